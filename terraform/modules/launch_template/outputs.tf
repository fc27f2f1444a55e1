output "launch_template_id" {
  description = "ID of the launch template the launcher runs instances from."
  value       = aws_launch_template.this.id
}

output "launch_template_arn" {
  description = "ARN of the launch template."
  value       = aws_launch_template.this.arn
}

output "launch_template_latest_version" {
  description = "Latest (and default) version of the launch template."
  value       = aws_launch_template.this.latest_version
}

output "security_group_id" {
  description = "ID of the instances' security group (no ingress)."
  value       = aws_security_group.this.id
}

output "user_data" {
  description = "The rendered cloud-config user data (plain text), for review."
  value       = local.user_data
}

output "root_volume_initialization_rate" {
  description = "The root volume's EBS Provisioned Rate for Volume Initialization, MiB/s; null when off."
  value       = var.root_volume_initialization_rate
}

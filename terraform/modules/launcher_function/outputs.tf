output "function_arn" {
  description = "ARN of the launcher function."
  value       = aws_lambda_function.this.arn
}

output "function_name" {
  description = "Name of the launcher function."
  value       = aws_lambda_function.this.function_name
}

output "role_arn" {
  description = "ARN of the launcher's role."
  value       = aws_iam_role.this.arn
}

output "log_group_name" {
  description = "Log group of the launcher."
  value       = aws_cloudwatch_log_group.this.name
}

output "powertools_layer_arn" {
  description = "ARN of the Powertools layer the function uses."
  value       = local.powertools_layer_arn
}

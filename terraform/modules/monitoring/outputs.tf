output "alarm_topic_arn" {
  description = "ARN of the SNS topic every alarm notifies; subscribe e-mail, chat or paging to it."
  value       = aws_sns_topic.this.arn
}

output "alarm_names" {
  description = "Names of the alarms, by what they watch."
  value = merge(
    { for k, a in aws_cloudwatch_metric_alarm.state_machine : k => a.alarm_name },
    {
      instance_past_lifetime = aws_cloudwatch_metric_alarm.instance_past_lifetime.alarm_name
      launcher_errors        = aws_cloudwatch_metric_alarm.launcher_errors.alarm_name
    },
    { for k, a in aws_cloudwatch_metric_alarm.dead_letter_queue : "${k}_dlq" => a.alarm_name },
  )
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard of the last runs."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "kms_key_arn" {
  description = "ARN of the key encrypting the alarm topic (created or given)."
  value       = local.kms_key_arn
}

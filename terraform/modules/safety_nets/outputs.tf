output "execution_status_rule_arn" {
  description = "ARN of the EventBridge rule that sends failed, timed-out and aborted executions to the launcher's cleanup."
  value       = aws_cloudwatch_event_rule.execution_ended_badly.arn
}

output "sweeper_schedule_arn" {
  description = "ARN of the sweeper schedule."
  value       = aws_scheduler_schedule.sweeper.arn
}

output "dead_letter_queue_url" {
  description = "URL of the queue receiving cleanup and sweep events that could not be delivered."
  value       = aws_sqs_queue.dlq.url
}

output "dead_letter_queue_name" {
  description = "Name of the safety nets' dead-letter queue (the dimension of its CloudWatch metrics)."
  value       = aws_sqs_queue.dlq.name
}

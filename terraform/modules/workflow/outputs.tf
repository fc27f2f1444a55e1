output "state_machine_arn" {
  description = "ARN of the state machine."
  value       = aws_sfn_state_machine.this.arn
}

output "state_machine_name" {
  description = "Name of the state machine."
  value       = aws_sfn_state_machine.this.name
}

output "activity_arn" {
  description = "ARN of the RunModel activity the instance agent polls."
  value       = aws_sfn_activity.this.id
}

output "log_group_name" {
  description = "Log group of the state machine's execution logs."
  value       = aws_cloudwatch_log_group.this.name
}

output "schedule_arn" {
  description = "ARN of the EventBridge Scheduler schedule."
  value       = aws_scheduler_schedule.this.arn
}

output "schedule_dead_letter_queue_url" {
  description = "URL of the schedule's dead-letter queue."
  value       = aws_sqs_queue.schedule_dlq.url
}

output "definition" {
  description = "The rendered ASL definition."
  value       = local.definition
}

output "schedule_name" {
  description = "Name of the EventBridge Scheduler schedule (in the default group)."
  value       = aws_scheduler_schedule.this.name
}

output "schedule_dead_letter_queue_name" {
  description = "Name of the schedule's dead-letter queue (the dimension of its CloudWatch metrics)."
  value       = aws_sqs_queue.schedule_dlq.name
}

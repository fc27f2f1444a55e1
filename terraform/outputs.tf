output "state_machine_arn" {
  description = "ARN of the weekly-run state machine (start an execution with input {} to run with every default)."
  value       = module.workflow.state_machine_arn
}

output "state_machine_console_url" {
  description = "The state machine in the Step Functions console: press \"Start execution\" there for a manual run."
  value       = "https://${var.region}.${local.console_domain[data.aws_partition.current.partition]}/states/home?region=${var.region}#/statemachines/view/${urlencode(module.workflow.state_machine_arn)}"
}

output "model_bucket_name" {
  description = "Model bucket: publish models under models/, read results under runs/<execution name>/."
  value       = module.model_bucket.bucket_name
}

output "activity_arn" {
  description = "ARN of the RunModel activity the instance agent polls."
  value       = module.workflow.activity_arn
}

output "launcher_function_name" {
  description = "Name of the launcher Lambda function."
  value       = module.launcher_function.function_name
}

output "launch_template_id" {
  description = "ID of the launch template holding every instance setting."
  value       = module.launch_template.launch_template_id
}

output "instance_role_arn" {
  description = "ARN of the instance role."
  value       = module.instance_role.role_arn
}

output "agent_log_group_name" {
  description = "Log group of the instance agent (journal and cloud-init output, when the AMI has the CloudWatch agent)."
  value       = aws_cloudwatch_log_group.agent.name
}

output "schedule_dead_letter_queue_url" {
  description = "Queue of weekly runs the scheduler could not start."
  value       = module.workflow.schedule_dead_letter_queue_url
}

output "safety_nets_dead_letter_queue_url" {
  description = "Queue of cleanup and sweep events that could not reach the launcher."
  value       = module.safety_nets.dead_letter_queue_url
}

output "region" {
  description = "Region of the stack (python -m gpurun reads it)."
  value       = var.region
}

output "schedule_name" {
  description = "Name of the weekly schedule (EventBridge Scheduler, default group)."
  value       = module.workflow.schedule_name
}

output "launcher_log_group_name" {
  description = "Log group of the launcher Lambda."
  value       = module.launcher_function.log_group_name
}

output "alarm_topic_arn" {
  description = "SNS topic of every alarm: subscribe e-mail, chat or paging to it."
  value       = module.monitoring.alarm_topic_arn
}

output "dashboard_name" {
  description = "CloudWatch dashboard of the last runs' phase durations, executions and alarms."
  value       = module.monitoring.dashboard_name
}

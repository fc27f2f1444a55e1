variable "name" {
  description = "Project name: prefix of the topic, key alias, alarms and dashboard."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,48}$", var.name))
    error_message = "name: use 1-48 letters, digits, hyphens and underscores."
  }
}

variable "state_machine_arn" {
  description = "ARN of the weekly-run state machine (its ExecutionsFailed/TimedOut/Aborted metrics are alarmed)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:states:[a-z0-9-]+:[0-9]{12}:stateMachine:[A-Za-z0-9_-]+$", var.state_machine_arn))
    error_message = "state_machine_arn: give a state machine ARN (arn:aws:states:<region>:<account>:stateMachine:<name>)."
  }
}

variable "launcher_function_name" {
  description = "Name of the launcher function (its errors are alarmed)."
  type        = string
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the launcher's Powertools metrics and the agent's EMF line (the project name)."
  type        = string

  validation {
    condition     = length(var.metrics_namespace) >= 1 && length(var.metrics_namespace) <= 255 && !startswith(var.metrics_namespace, "AWS/")
    error_message = "metrics_namespace: 1-255 characters, not starting with AWS/ (reserved for AWS services)."
  }
}

variable "agent_log_group_name" {
  description = "Log group holding the agent's lines and its per-run EMF line (the dashboard's last-runs table queries it)."
  type        = string
}

variable "dead_letter_queue_names" {
  description = "SQS dead-letter queues to alarm on when not empty, by a short label (e.g. schedule, safety_nets)."
  type        = map(string)

  validation {
    condition     = alltrue([for k, v in var.dead_letter_queue_names : can(regex("^[a-z_]{1,32}$", k)) && can(regex("^[A-Za-z0-9_-]{1,80}$", v))])
    error_message = "dead_letter_queue_names: labels of lowercase letters and underscores, values SQS queue names (1-80 letters, digits, - and _)."
  }
}

variable "alarm_email" {
  description = "E-mail address subscribed to the alarm topic (the recipient must confirm the subscription). Null: subscribe something yourself to the alarm_topic_arn output."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_email == null || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alarm_email))
    error_message = "alarm_email: give one e-mail address such as ops@example.com, or null."
  }
}

variable "kms_key_arn" {
  description = "KMS key encrypting the alarm topic. Its key policy must let cloudwatch.amazonaws.com use it (GenerateDataKey*, Decrypt). Null creates a dedicated key (about $1/month)."
  type        = string
  default     = null
}

variable "failure_evaluation_period_seconds" {
  description = "Period of the execution and launcher alarms: an event is noticed at most this long after it happens."
  type        = number
  default     = 300

  validation {
    condition     = contains([60, 300, 900, 3600], var.failure_evaluation_period_seconds)
    error_message = "failure_evaluation_period_seconds: use 60, 300, 900 or 3600."
  }
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}

variable "name" {
  description = "Prefix of the rule, schedule, queue and role names."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,48}$", var.name))
    error_message = "name: use 1-48 letters, digits, hyphens and underscores."
  }
}

variable "state_machine_arn" {
  description = "ARN of the state machine whose failed, timed-out and aborted executions trigger a cleanup."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:states:[a-z0-9-]+:[0-9]{12}:stateMachine:[A-Za-z0-9_-]+$", var.state_machine_arn))
    error_message = "state_machine_arn: give a state machine ARN (arn:aws:states:<region>:<account>:stateMachine:<name>)."
  }
}

variable "launcher_function_arn" {
  description = "ARN of the launcher function (actions cleanup and sweep)."
  type        = string
}

variable "launcher_function_name" {
  description = "Name of the launcher function (for its resource-based permission)."
  type        = string
}

variable "sweeper_schedule_expression" {
  description = "How often the sweeper looks for project instances whose execution is over or that outlived their maximum lifetime."
  type        = string
  default     = "rate(15 minutes)"

  validation {
    condition     = can(regex("^(rate\\([1-9][0-9]* (minute|minutes|hour|hours)\\)|cron\\(\\S+ \\S+ \\S+ \\S+ \\S+ \\S+\\))$", var.sweeper_schedule_expression))
    error_message = "sweeper_schedule_expression: use rate(<n> minutes|hours) such as rate(15 minutes), or a cron(...) expression."
  }
}

variable "sweeper_enabled" {
  description = "Whether the sweeper schedule runs."
  type        = bool
  default     = true
}

variable "retry" {
  description = "Retry policy of both targets (the cleanup rule's and the sweeper's)."
  type = object({
    maximum_retry_attempts       = optional(number, 10)
    maximum_event_age_in_seconds = optional(number, 3600)
  })
  default = {}

  validation {
    condition     = var.retry.maximum_retry_attempts >= 0 && var.retry.maximum_retry_attempts <= 185
    error_message = "retry.maximum_retry_attempts: must be from 0 to 185."
  }

  validation {
    condition     = var.retry.maximum_event_age_in_seconds >= 60 && var.retry.maximum_event_age_in_seconds <= 86400
    error_message = "retry.maximum_event_age_in_seconds: must be from 60 to 86400."
  }
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}

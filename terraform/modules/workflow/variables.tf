variable "name" {
  description = "Name of the state machine; also the prefix of the activity, schedule, queue, roles and log group."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,60}$", var.name))
    error_message = "name: use 1-60 letters, digits, hyphens and underscores."
  }
}

variable "launcher_function_arn" {
  description = "ARN of the launcher Lambda function (StartInstance and StopInstance call it)."
  type        = string
}

variable "model_bucket_name" {
  description = "Name of the model bucket (models/ in, runs/ out)."
  type        = string
}

variable "run_defaults" {
  description = "Default run parameters; an execution's input may override any of them (docs/design.md, \"The run parameters\")."
  type = object({
    instance_types      = list(string)
    subnet_ids          = list(string)
    model_prefix        = string
    max_runtime_seconds = number
    parameters          = any
  })

  validation {
    condition     = length(var.run_defaults.instance_types) >= 1 && alltrue([for t in var.run_defaults.instance_types : can(regex("^(g4dn|g4ad|g5|g6|g6e|g6f|gr6|gr6f|p3dn|p4d|p4de|p5|p5e|p5en|p6-b200)\\.[0-9]*(nano|micro|small|medium|large|xlarge|metal[a-z0-9-]*)$", t))])
    error_message = "run_defaults.instance_types: give at least one GPU instance type with instance store, e.g. g5.xlarge, g6.xlarge, g4dn.xlarge, p4d.24xlarge (families g4dn, g4ad, g5, g6, g6e, g6f, gr6, gr6f, p3dn, p4d, p4de, p5, p5e, p5en, p6-b200)."
  }

  validation {
    condition     = length(var.run_defaults.subnet_ids) >= 1 && alltrue([for s in var.run_defaults.subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", s))])
    error_message = "run_defaults.subnet_ids: give at least one subnet id such as subnet-0123456789abcdef0."
  }

  validation {
    condition     = can(regex("^models/([A-Za-z0-9!_.*'()-]+/)+$", var.run_defaults.model_prefix))
    error_message = "run_defaults.model_prefix: must start with models/ and end with /, e.g. models/current/."
  }

  validation {
    condition     = var.run_defaults.max_runtime_seconds >= 1 && var.run_defaults.max_runtime_seconds <= 604800 && floor(var.run_defaults.max_runtime_seconds) == var.run_defaults.max_runtime_seconds
    error_message = "run_defaults.max_runtime_seconds: must be a whole number of seconds from 1 to 604800 (one week)."
  }
}

variable "heartbeat_timeout_seconds" {
  description = "HeartbeatSeconds of the RunModel activity task: the agent must heartbeat more often than this (it does every quarter of it, at least 5 seconds apart)."
  type        = number
  default     = 240

  # At least 20: the agent's heartbeat interval is max(5, floor(timeout / 4)), so below 20 it
  # would heartbeat fewer than four times per timeout.
  validation {
    condition     = var.heartbeat_timeout_seconds >= 20 && floor(var.heartbeat_timeout_seconds) == var.heartbeat_timeout_seconds
    error_message = "heartbeat_timeout_seconds: must be a whole number of at least 20."
  }
}

variable "activity_timeout_seconds" {
  description = "TimeoutSeconds of the RunModel activity task, counted from when the agent takes the task."
  type        = number
  default     = 7200

  validation {
    condition     = var.activity_timeout_seconds >= 60 && floor(var.activity_timeout_seconds) == var.activity_timeout_seconds
    error_message = "activity_timeout_seconds: must be a whole number of at least 60."
  }
}

variable "execution_timeout_seconds" {
  description = "State-machine-level TimeoutSeconds: the only limit that also covers an instance that never takes its task."
  type        = number
  default     = 10800

  validation {
    condition     = var.execution_timeout_seconds >= 300 && var.execution_timeout_seconds <= 31536000 && floor(var.execution_timeout_seconds) == var.execution_timeout_seconds
    error_message = "execution_timeout_seconds: must be a whole number from 300 to 31536000 (one year)."
  }
}

variable "schedule_expression" {
  description = "EventBridge Scheduler expression of the weekly run: cron(...), rate(...) or at(...)."
  type        = string
  default     = "cron(0 6 ? * TUE *)"

  validation {
    condition     = can(regex("^(cron\\(\\S+ \\S+ \\S+ \\S+ \\S+ \\S+\\)|rate\\([1-9][0-9]* (minute|minutes|hour|hours|day|days)\\)|at\\([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\))$", var.schedule_expression))
    error_message = "schedule_expression: use cron(<min> <hour> <day-of-month> <month> <day-of-week> <year>) such as cron(0 6 ? * TUE *), rate(<n> <unit>) or at(yyyy-mm-ddThh:mm:ss)."
  }
}

variable "schedule_timezone" {
  description = "IANA time zone of the schedule (daylight saving time is followed), e.g. Europe/Paris."
  type        = string
  default     = "UTC"

  validation {
    condition     = can(regex("^(UTC|Etc/[A-Za-z0-9+-]+|[A-Z][A-Za-z_-]+(/[A-Z0-9][A-Za-z0-9_+-]+){1,2})$", var.schedule_timezone))
    error_message = "schedule_timezone: give an IANA time zone name such as UTC, Europe/Paris or America/Argentina/Buenos_Aires."
  }
}

variable "schedule_enabled" {
  description = "Whether the schedule starts executions (false keeps it, DISABLED; manual starts still work)."
  type        = bool
  default     = true
}

variable "schedule_retry" {
  description = "Retry policy of the schedule's target (EventBridge Scheduler limits: 0-185 attempts, 60-86400 seconds)."
  type = object({
    maximum_retry_attempts       = optional(number, 3)
    maximum_event_age_in_seconds = optional(number, 3600)
  })
  default = {}

  validation {
    condition     = var.schedule_retry.maximum_retry_attempts >= 0 && var.schedule_retry.maximum_retry_attempts <= 185
    error_message = "schedule_retry.maximum_retry_attempts: must be from 0 to 185."
  }

  validation {
    condition     = var.schedule_retry.maximum_event_age_in_seconds >= 60 && var.schedule_retry.maximum_event_age_in_seconds <= 86400
    error_message = "schedule_retry.maximum_event_age_in_seconds: must be from 60 to 86400."
  }
}

variable "log_retention_days" {
  description = "Retention of the state machine's log group, in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days: use a value CloudWatch Logs accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "kms_key_arn" {
  description = "KMS key for the state machine's log group. Null uses AWS-owned keys. Its key policy must allow the CloudWatch Logs service principal."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]+$", var.kms_key_arn))
    error_message = "kms_key_arn: give a key ARN such as arn:aws:kms:eu-west-1:123456789012:key/<uuid> (not an alias), or null."
  }
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}

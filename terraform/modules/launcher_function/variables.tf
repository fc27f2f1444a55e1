variable "name" {
  description = "Name of the function, its role and its log group."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,56}$", var.name))
    error_message = "name: use 1-56 letters, digits, hyphens and underscores (a Lambda function name; the role adds a suffix)."
  }
}

variable "project_name" {
  description = "Project name: the Project tag the launcher puts on instances and the only tag it may terminate."
  type        = string
}

variable "source_dir" {
  description = "Directory packaged into the function's zip: the parent of the `launcher` package (handler launcher.app.handler)."
  type        = string
}

variable "build_dir" {
  description = "Directory where the zip is written (ignored by git)."
  type        = string
}

variable "architecture" {
  description = "Instruction set of the function: arm64 (cheaper per GB-second) or x86_64."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture: use \"arm64\" or \"x86_64\"."
  }
}

variable "memory_size" {
  description = "Memory of the function in MB."
  type        = number
  default     = 256

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size: must be from 128 to 10240 MB."
  }
}

variable "timeout_seconds" {
  description = "Timeout of one invocation. A start tries every instance type and subnet in turn, so allow a few seconds per pair."
  type        = number
  default     = 120

  validation {
    condition     = var.timeout_seconds >= 10 && var.timeout_seconds <= 900
    error_message = "timeout_seconds: must be from 10 to 900."
  }
}

variable "powertools_layer_version" {
  description = "Version of the public Powertools for AWS Lambda (Python) v3 layer (AWSLambdaPowertoolsPythonV3-python312-<arch>); match requirements.txt's aws-lambda-powertools."
  type        = number
  default     = 27

  validation {
    condition     = var.powertools_layer_version >= 1 && floor(var.powertools_layer_version) == var.powertools_layer_version
    error_message = "powertools_layer_version: must be a whole number >= 1 (see the Powertools docs' layer table)."
  }
}

variable "log_level" {
  description = "Application log level of the function (Lambda's advanced logging controls; Powertools' Logger follows it)."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"], var.log_level)
    error_message = "log_level: use TRACE, DEBUG, INFO, WARN, ERROR or FATAL."
  }
}

variable "log_retention_days" {
  description = "Retention of the function's log group, in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days: use a value CloudWatch Logs accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "kms_key_arn" {
  description = "KMS key for the log group and the function's environment variables. Null uses AWS-owned keys. Its key policy must allow the CloudWatch Logs service principal."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]+$", var.kms_key_arn))
    error_message = "kms_key_arn: give a key ARN such as arn:aws:kms:eu-west-1:123456789012:key/<uuid> (not an alias), or null."
  }
}

variable "launch_template_id" {
  description = "ID of the launch template the function runs instances from (and only from)."
  type        = string
}

variable "launch_template_arn" {
  description = "ARN of that launch template (for the IAM conditions)."
  type        = string
}

variable "launch_template_version" {
  description = "Launch template version the function uses."
  type        = string
}

variable "instance_role_arn" {
  description = "ARN of the instance role: the only role the function may pass, and only to EC2."
  type        = string
}

variable "ami_ssm_parameter" {
  description = "SSM parameter behind the launch template's AMI when it is \"resolve:ssm:<parameter>\" (EC2 reads it as the caller); null for a plain AMI id."
  type        = string
  default     = null
}

variable "activity_arn" {
  description = "ARN of the run's Step Functions activity: instance_lost fails its pending task when the run's instance is gone before an agent took it."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:states:[a-z0-9-]+:[0-9]{12}:activity:[A-Za-z0-9_-]{1,80}$", var.activity_arn))
    error_message = "activity_arn: must be a Step Functions activity ARN."
  }
}

variable "state_machine_name" {
  description = "Name of the workflow's state machine. Its ARN is built from the name, so the function's policy does not depend on the state machine (which depends on the function)."
  type        = string
}

variable "max_instance_lifetime_seconds" {
  description = "Maximum lifetime of an instance: the sweeper terminates project instances older than this."
  type        = number
}

variable "run_records_bucket_arn" {
  description = "ARN of the model bucket: stop writes runs/<execution name>/run.json there when the agent did not (docs/design.md, \"The run record\")."
  type        = string
}

variable "run_records_prefix" {
  description = "Prefix of the run records in that bucket (the results prefix of every run)."
  type        = string
  default     = "runs/"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/$", var.run_records_prefix))
    error_message = "run_records_prefix: one folder name ending in /, e.g. runs/."
  }
}

variable "run_records_kms_key_arn" {
  description = "KMS key of the model bucket when it uses SSE-KMS (null for SSE-S3): writing a run record needs it."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}

variable "name" {
  description = "Name of the role and the instance profile."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", var.name))
    error_message = "name: use 1-64 letters, digits and +=,.@_- (an IAM role name)."
  }
}

variable "model_bucket_arn" {
  description = "ARN of the model bucket."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9.-]+$", var.model_bucket_arn))
    error_message = "model_bucket_arn: give an S3 bucket ARN such as arn:aws:s3:::my-bucket."
  }
}

variable "read_prefixes" {
  description = "Prefixes of the model bucket the instance may list and read (the models and the agent artifact)."
  type        = list(string)
  default     = ["models/", "agent/"]

  validation {
    condition     = length(var.read_prefixes) >= 1 && alltrue([for p in var.read_prefixes : can(regex("^[^*/][^*]*/$", p))])
    error_message = "read_prefixes: give at least one prefix, each ending in '/' without leading '/' or '*'."
  }
}

variable "write_prefix" {
  description = "Prefix of the model bucket the instance may write results under."
  type        = string
  default     = "runs/"

  validation {
    condition     = can(regex("^[^*/][^*]*/$", var.write_prefix))
    error_message = "write_prefix: must end in '/' and contain no '*' nor leading '/'."
  }
}

variable "kms_key_arn" {
  description = "ARN of the KMS key encrypting the model bucket, if any: the instance gets Decrypt and GenerateDataKey on it."
  type        = string
  default     = null
}

variable "activity_arn" {
  description = "ARN of the Step Functions activity the agent polls."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:states:[a-z0-9-]+:[0-9]{12}:activity:.+$", var.activity_arn))
    error_message = "activity_arn: give a Step Functions activity ARN (arn:aws:states:<region>:<account>:activity:<name>)."
  }
}

variable "log_group_arn" {
  description = "ARN of the CloudWatch Logs group the instance writes the agent's logs to (without the trailing :*)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:logs:[a-z0-9-]+:[0-9]{12}:log-group:[^:*]+$", var.log_group_arn))
    error_message = "log_group_arn: give a log group ARN without the trailing ':*'."
  }
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}

variable "ecr_repository_arn" {
  description = "ARN of the ECR repository of the model's container image, if it is in ECR: the instance may get a registry token and pull from that repository only. Null: no ECR permissions."
  type        = string
  default     = null

  validation {
    condition     = var.ecr_repository_arn == null || can(regex("^arn:aws[a-z-]*:ecr:[a-z0-9-]+:[0-9]{12}:repository/[a-z0-9._/-]+$", var.ecr_repository_arn))
    error_message = "ecr_repository_arn: give an ECR repository ARN (arn:aws:ecr:<region>:<account>:repository/<name>), or null."
  }
}

variable "bucket_name" {
  description = "Name of the model bucket. Null lets AWS derive a unique name from bucket_prefix."
  type        = string
  default     = null

  validation {
    condition     = var.bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name: use 3-63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit."
  }
}

variable "bucket_prefix" {
  description = "Prefix of the generated bucket name when bucket_name is null (at most 37 characters)."
  type        = string
  default     = "scheduled-gpu-model-"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{0,36}$", var.bucket_prefix))
    error_message = "bucket_prefix: use at most 37 lowercase letters, digits, dots and hyphens, starting with a letter or digit."
  }
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete a bucket that still holds objects (models, results). Keep false outside sandboxes."
  type        = bool
  default     = false
}

variable "create_kms_key" {
  description = "Create a customer managed KMS key (rotation on) for the bucket's default encryption. Ignored when kms_key_arn is set."
  type        = bool
  default     = false
}

variable "kms_key_arn" {
  description = "ARN of an existing KMS key for the bucket's default encryption. Null with create_kms_key = false means SSE-S3 (AES256)."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]+$", var.kms_key_arn))
    error_message = "kms_key_arn: give a key ARN such as arn:aws:kms:eu-west-1:123456789012:key/<uuid> (not an alias), or null."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which noncurrent object versions (replaced models, overwritten results) are deleted."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1 && floor(var.noncurrent_version_expiration_days) == var.noncurrent_version_expiration_days
    error_message = "noncurrent_version_expiration_days: must be a whole number of days, at least 1."
  }
}

variable "run_results_expiration_days" {
  description = "Days after which run results under runs/ expire. Null keeps them forever."
  type        = number
  default     = null

  validation {
    condition     = var.run_results_expiration_days == null || try(var.run_results_expiration_days >= 1, false)
    error_message = "run_results_expiration_days: must be null (keep) or at least 1 day."
  }
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}

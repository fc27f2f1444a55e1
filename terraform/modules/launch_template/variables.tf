variable "name" {
  description = "Name of the launch template and prefix of the security group's name."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9()./_-]{3,120}$", var.name))
    error_message = "name: use 3-120 letters, digits and ()./_- (a launch template name)."
  }
}

variable "vpc_id" {
  description = "VPC of the subnets the instances run in; the security group is created there."
  type        = string

  validation {
    condition     = can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "vpc_id: give a VPC id such as vpc-0123456789abcdef0."
  }
}

variable "ami" {
  description = "AMI of the instances: an id (ami-...) or \"resolve:ssm:<parameter>\", resolved by EC2 at each launch. The default is the public Deep Learning OSS Nvidia Driver AMI GPU PyTorch for Ubuntu 22.04 (x86_64)."
  type        = string
  default     = "resolve:ssm:/aws/service/deeplearning/ami/x86_64/oss-nvidia-driver-gpu-pytorch-2.7-ubuntu-22.04/latest/ami-id"

  validation {
    condition     = can(regex("^(ami-[0-9a-f]{8,17}|resolve:ssm:[A-Za-z0-9_./-]+(:[0-9]+)?)$", var.ami))
    error_message = "ami: give an AMI id (ami-0123456789abcdef0) or resolve:ssm:<parameter name>, e.g. resolve:ssm:/aws/service/deeplearning/ami/x86_64/oss-nvidia-driver-gpu-pytorch-2.7-ubuntu-22.04/latest/ami-id."
  }
}

variable "default_instance_type" {
  description = "Instance type written into the launch template; the launcher overrides it with each run's instance_types."
  type        = string
  default     = "g4dn.xlarge"
}

variable "instance_profile_arn" {
  description = "ARN of the instance profile (from the instance_role module)."
  type        = string
}

variable "root_volume_size_gib" {
  description = "Size of the encrypted gp3 root volume in GiB. The model itself goes to instance store; the DLAMI needs about 100 GiB."
  type        = number
  default     = 120

  validation {
    condition     = var.root_volume_size_gib >= 8 && var.root_volume_size_gib <= 16384 && floor(var.root_volume_size_gib) == var.root_volume_size_gib
    error_message = "root_volume_size_gib: must be a whole number of GiB from 8 to 16384."
  }
}

variable "root_volume_initialization_rate" {
  description = "EBS Provisioned Rate for Volume Initialization of the root volume, MiB/s (100-300): its snapshot's blocks are fetched from S3 at this rate from launch, instead of lazily at a few MB/s on first read. Billed per GiB initialized (see README). Null: the default, lazy initialization."
  type        = number
  default     = null

  validation {
    condition     = var.root_volume_initialization_rate == null || try(var.root_volume_initialization_rate >= 100 && var.root_volume_initialization_rate <= 300 && floor(var.root_volume_initialization_rate) == var.root_volume_initialization_rate, false)
    error_message = "root_volume_initialization_rate: must be a whole number of MiB/s from 100 to 300, or null (no provisioned rate)."
  }
}

variable "root_device_name" {
  description = "Root device name of the AMI (/dev/sda1 for Ubuntu, /dev/xvda for Amazon Linux)."
  type        = string
  default     = "/dev/sda1"

  validation {
    condition     = contains(["/dev/sda1", "/dev/xvda"], var.root_device_name)
    error_message = "root_device_name: use /dev/sda1 (Ubuntu AMIs) or /dev/xvda (Amazon Linux AMIs)."
  }
}

variable "ebs_kms_key_arn" {
  description = "KMS key for the root volume. Null uses the account's default EBS key (aws/ebs)."
  type        = string
  default     = null
}

variable "metadata_options" {
  description = "Instance metadata service settings (IMDSv2 is always required). Hop limit 2 because a container adds one network hop."
  type = object({
    http_put_response_hop_limit = optional(number, 2)
    instance_metadata_tags      = optional(string, "enabled")
  })
  default = {}

  validation {
    condition     = var.metadata_options.http_put_response_hop_limit >= 1 && var.metadata_options.http_put_response_hop_limit <= 64
    error_message = "metadata_options.http_put_response_hop_limit: must be from 1 to 64."
  }

  validation {
    condition     = contains(["enabled", "disabled"], var.metadata_options.instance_metadata_tags)
    error_message = "metadata_options.instance_metadata_tags: use \"enabled\" or \"disabled\"."
  }
}

variable "max_lifetime_minutes" {
  description = "Hard deadline: the user data's first action arms a power-off <minutes> after boot (and the instance then terminates)."
  type        = number

  validation {
    condition     = var.max_lifetime_minutes >= 5 && floor(var.max_lifetime_minutes) == var.max_lifetime_minutes
    error_message = "max_lifetime_minutes: must be a whole number of at least 5."
  }
}

variable "agent_config" {
  description = "The agent's configuration object, written as JSON to /etc/instance-agent/config.json (keys: docs/design.md)."
  type        = any
}

variable "agent_artifact_s3_uri" {
  description = "S3 URI of the agent artifact (s3://<bucket>/agent/instance-agent.tar.gz); a tarball with the agent's packages under site/."
  type        = string

  validation {
    condition     = can(regex("^s3://[a-z0-9.-]+/.+\\.tar\\.gz$", var.agent_artifact_s3_uri))
    error_message = "agent_artifact_s3_uri: give s3://<bucket>/<key>.tar.gz."
  }
}

variable "agent_artifact_version" {
  description = "Version (ETag or version id) of the agent artifact: written into the user data so each new artifact produces a new launch template version."
  type        = string
  default     = ""
}

variable "region" {
  description = "AWS region, passed to the AWS CLI and the CloudWatch agent on the instance."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]$", var.region))
    error_message = "region: give an AWS region code such as eu-west-1 or us-east-1."
  }
}

variable "log_group_name" {
  description = "CloudWatch Logs group that receives the agent's journal and cloud-init's output (when the CloudWatch agent is installed on the AMI)."
  type        = string
}

variable "instance_tags" {
  description = "Tags the launch template puts on every instance and volume (the launcher adds the per-run tags)."
  type        = map(string)
  default     = {}
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}

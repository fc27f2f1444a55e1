variable "name" {
  description = "Project name: prefix of every resource name and the value of the Project tag that every IAM condition keys on."
  type        = string
  default     = "scheduled-gpu-model"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}[a-z0-9]$", var.name))
    error_message = "name: use 4-32 lowercase letters, digits and hyphens, starting with a letter (it prefixes bucket, role and function names)."
  }
}

variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]$", var.region))
    error_message = "region: give an AWS region code such as eu-west-1 or us-east-1."
  }
}

# ---- Schedule -------------------------------------------------------------------------------

variable "schedule_expression" {
  description = "When the run starts, as an EventBridge Scheduler expression. Default: every Tuesday at 06:00 (in schedule_timezone)."
  type        = string
  default     = "cron(0 6 ? * TUE *)"

  validation {
    condition     = can(regex("^(cron\\(\\S+ \\S+ \\S+ \\S+ \\S+ \\S+\\)|rate\\([1-9][0-9]* (minute|minutes|hour|hours|day|days)\\)|at\\([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\))$", var.schedule_expression))
    error_message = "schedule_expression: use cron(<min> <hour> <day-of-month> <month> <day-of-week> <year>) such as cron(0 6 ? * TUE *), rate(<n> <unit>) or at(yyyy-mm-ddThh:mm:ss)."
  }
}

variable "schedule_timezone" {
  description = "IANA time zone of schedule_expression (daylight saving time is followed), e.g. Europe/Paris."
  type        = string
  default     = "UTC"

  validation {
    condition     = can(regex("^(UTC|Etc/[A-Za-z0-9+-]+|[A-Z][A-Za-z_-]+(/[A-Z0-9][A-Za-z0-9_+-]+){1,2})$", var.schedule_timezone))
    error_message = "schedule_timezone: give an IANA time zone name such as UTC, Europe/Paris or America/Argentina/Buenos_Aires."
  }
}

variable "schedule_enabled" {
  description = "Whether the schedule starts runs. false keeps everything deployed (manual starts from the console still work)."
  type        = bool
  default     = true
}

variable "sweeper_schedule_expression" {
  description = "How often the sweeper terminates project instances whose execution is over or whose lifetime is exceeded."
  type        = string
  default     = "rate(15 minutes)"

  validation {
    condition     = can(regex("^(rate\\([1-9][0-9]* (minute|minutes|hour|hours)\\)|cron\\(\\S+ \\S+ \\S+ \\S+ \\S+ \\S+\\))$", var.sweeper_schedule_expression))
    error_message = "sweeper_schedule_expression: use rate(<n> minutes|hours) such as rate(15 minutes), or a cron(...) expression."
  }
}

# ---- Where and on what the model runs -------------------------------------------------------

variable "instance_types" {
  description = "GPU instance types, tried in order when capacity is short. Each needs local NVMe instance store (the model is copied there)."
  type        = list(string)
  default     = ["g5.xlarge", "g6.xlarge", "g4dn.xlarge"]

  validation {
    condition     = length(var.instance_types) >= 1 && alltrue([for t in var.instance_types : can(regex("^(g4dn|g4ad|g5|g6|g6e|g6f|gr6|gr6f|p3dn|p4d|p4de|p5|p5e|p5en|p6-b200)\\.[0-9]*(nano|micro|small|medium|large|xlarge|metal[a-z0-9-]*)$", t))])
    error_message = "instance_types: give at least one GPU instance type with instance store, e.g. g5.xlarge, g6.xlarge, g4dn.xlarge, p4d.24xlarge (families g4dn, g4ad, g5, g6, g6e, g6f, gr6, gr6f, p3dn, p4d, p4de, p5, p5e, p5en, p6-b200)."
  }
}

variable "vpc_id" {
  description = "VPC of the subnets; the instances' security group (no ingress, HTTPS egress) is created there."
  type        = string

  validation {
    condition     = can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "vpc_id: give a VPC id such as vpc-0123456789abcdef0."
  }
}

variable "subnet_ids" {
  description = "Subnets (ideally one per availability zone), tried in order when capacity is short. They need a route to S3, Step Functions and CloudWatch Logs (NAT, public IP or VPC endpoints)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 1 && alltrue([for s in var.subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", s))])
    error_message = "subnet_ids: give at least one subnet id such as subnet-0123456789abcdef0."
  }
}

variable "ami" {
  description = "AMI: an id (ami-...) or \"resolve:ssm:<parameter>\", which EC2 resolves at each launch. Default: the public Deep Learning OSS Nvidia Driver AMI GPU PyTorch 2.7 for Ubuntu 22.04 (x86_64)."
  type        = string
  default     = "resolve:ssm:/aws/service/deeplearning/ami/x86_64/oss-nvidia-driver-gpu-pytorch-2.7-ubuntu-22.04/latest/ami-id"

  validation {
    condition     = can(regex("^(ami-[0-9a-f]{8,17}|resolve:ssm:[A-Za-z0-9_./-]+(:[0-9]+)?)$", var.ami))
    error_message = "ami: give an AMI id (ami-0123456789abcdef0) or resolve:ssm:<parameter name>, e.g. resolve:ssm:/aws/service/deeplearning/ami/x86_64/oss-nvidia-driver-gpu-pytorch-2.7-ubuntu-22.04/latest/ami-id."
  }
}

variable "root_volume_size_gib" {
  description = "Size of the encrypted gp3 root volume, GiB. The Deep Learning AMIs need about 100 GiB; the model goes to instance store."
  type        = number
  default     = 120

  validation {
    condition     = var.root_volume_size_gib >= 8 && var.root_volume_size_gib <= 16384 && floor(var.root_volume_size_gib) == var.root_volume_size_gib
    error_message = "root_volume_size_gib: must be a whole number of GiB from 8 to 16384."
  }
}

variable "root_volume_initialization_rate" {
  description = "EBS Provisioned Rate for Volume Initialization of the root volume, MiB/s (100-300): the AMI snapshot's blocks are fetched at this rate from launch rather than lazily at a few MB/s on first read. Billed per GiB of the snapshot initialized, every run (see the README's cost section). Null (default): off."
  type        = number
  default     = null

  validation {
    condition     = var.root_volume_initialization_rate == null || try(var.root_volume_initialization_rate >= 100 && var.root_volume_initialization_rate <= 300 && floor(var.root_volume_initialization_rate) == var.root_volume_initialization_rate, false)
    error_message = "root_volume_initialization_rate: must be a whole number of MiB/s from 100 to 300, or null (no provisioned rate)."
  }
}

# ---- The run ---------------------------------------------------------------------------------

variable "model_prefix" {
  description = "Default S3 prefix of the model in the model bucket (under models/, ending in /). An execution's input may override it."
  type        = string
  default     = "models/current/"

  validation {
    condition     = can(regex("^models/([A-Za-z0-9!_.*'()-]+/)+$", var.model_prefix))
    error_message = "model_prefix: must start with models/ and end with /, e.g. models/current/."
  }
}

variable "run_parameters" {
  description = "Default free-form parameters passed to the model as its task input. An execution's input may override them."
  type        = any
  default     = {}
}

variable "model_command" {
  description = "Command the agent runs for the model, as an argument list (no shell: $MODEL_DIR is not expanded). Empty (the default) with model_shell_command null: the published model's own run.sh, or with container_image the image's entry point. See instance_agent/README.md, \"The model\"."
  type        = list(string)
  default     = []
}

variable "model_shell_command" {
  description = "Command the agent runs for the model, as one string for /bin/sh -c: $MODEL_DIR, $OUTPUT_DIR, $TASK_INPUT, $RUN_NAME and $MODEL_PYTHON expand. Null: model_command (or the model's run.sh). Set one of the two."
  type        = string
  default     = null

  validation {
    condition     = var.model_shell_command == null || try(trimspace(var.model_shell_command) != "", false)
    error_message = "model_shell_command: must not be blank; give a command or null."
  }
}

variable "warm_paths" {
  description = "Root-volume files or directories the agent reads once at boot, in parallel with the model copy, so their blocks are fetched from the AMI's snapshot before the model imports them (e.g. [\"/opt/pytorch\"] on a PyTorch Deep Learning AMI). Its time is the warm phase of run.json."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for p in var.warm_paths : startswith(p, "/")])
    error_message = "warm_paths: every path must be absolute, e.g. /opt/pytorch."
  }
}

variable "container_image" {
  description = "Container image to run the model in (docker, GPUs attached), pulled at boot while the model copies. Null runs the model on the instance. An ECR image (<account>.dkr.ecr.<region>.amazonaws.com/<repository>[:tag]) gets the instance role pull permissions on that repository only."
  type        = string
  default     = null

  validation {
    condition     = var.container_image == null || can(regex("^[a-z0-9][a-z0-9._/:@-]*$", var.container_image))
    error_message = "container_image: give an image reference such as 123456789012.dkr.ecr.eu-west-1.amazonaws.com/model:1.2, or null."
  }
}

variable "max_runtime_seconds" {
  description = "Default limit of the model command's run time; the agent kills it past this (error ModelRunTimedOut)."
  type        = number
  default     = 3600

  validation {
    condition     = var.max_runtime_seconds >= 1 && var.max_runtime_seconds <= 604800 && floor(var.max_runtime_seconds) == var.max_runtime_seconds
    error_message = "max_runtime_seconds: must be a whole number of seconds from 1 to 604800 (one week)."
  }
}

variable "allow_root_volume_fallback" {
  description = "Let the agent copy the model to the root volume when the instance type has no instance store (slower, and the root volume must be large enough)."
  type        = bool
  default     = false
}

# ---- Timeouts: nested from the inside out ---------------------------------------------------

variable "heartbeat_timeout_seconds" {
  description = "HeartbeatSeconds of the RunModel task: a run whose agent is silent this long fails. The agent heartbeats every quarter of it."
  type        = number
  default     = 240

  validation {
    condition     = var.heartbeat_timeout_seconds >= 20 && floor(var.heartbeat_timeout_seconds) == var.heartbeat_timeout_seconds
    error_message = "heartbeat_timeout_seconds: must be a whole number of at least 20."
  }
}

variable "task_wait_seconds" {
  description = "How long the agent waits for its activity task after boot before it gives up and shuts the instance down."
  type        = number
  default     = 1800

  validation {
    condition     = var.task_wait_seconds >= 60 && floor(var.task_wait_seconds) == var.task_wait_seconds
    error_message = "task_wait_seconds: must be a whole number of at least 60."
  }
}

variable "activity_timeout_seconds" {
  description = "TimeoutSeconds of the RunModel task, from when the agent takes it: model copy, run and results upload."
  type        = number
  default     = 7200

  validation {
    condition     = var.activity_timeout_seconds >= 60 && floor(var.activity_timeout_seconds) == var.activity_timeout_seconds
    error_message = "activity_timeout_seconds: must be a whole number of at least 60."
  }
}

variable "execution_timeout_seconds" {
  description = "TimeoutSeconds of the whole execution: the limit that also covers an instance that never takes its task."
  type        = number
  default     = 10800

  validation {
    condition     = var.execution_timeout_seconds >= 300 && var.execution_timeout_seconds <= 31536000 && floor(var.execution_timeout_seconds) == var.execution_timeout_seconds
    error_message = "execution_timeout_seconds: must be a whole number from 300 to 31536000 (one year)."
  }
}

variable "max_instance_lifetime_minutes" {
  description = "Hard deadline of every instance: its user data first arms a power-off <minutes> after boot. Must exceed the execution timeout."
  type        = number
  default     = 200

  validation {
    condition     = var.max_instance_lifetime_minutes >= 5 && floor(var.max_instance_lifetime_minutes) == var.max_instance_lifetime_minutes
    error_message = "max_instance_lifetime_minutes: must be a whole number of at least 5."
  }
}

# ---- Packaging, logs, encryption, tags ------------------------------------------------------

variable "agent_artifact_path" {
  description = "Path of the agent artifact built by `make build`, relative to the directory Terraform runs in (this one)."
  type        = string
  default     = "../dist/instance-agent.tar.gz"

  validation {
    condition     = fileexists(var.agent_artifact_path)
    error_message = "agent_artifact_path: file not found; run `make build` at the repository root first (it writes dist/instance-agent.tar.gz)."
  }
}

variable "lambda_architecture" {
  description = "Instruction set of the launcher function: arm64 or x86_64."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.lambda_architecture)
    error_message = "lambda_architecture: use \"arm64\" or \"x86_64\"."
  }
}

variable "powertools_layer_version" {
  description = "Version of the public Powertools for AWS Lambda (Python) v3 layer (AWSLambdaPowertoolsPythonV3-python312-<arch>)."
  type        = number
  default     = 27
}

variable "log_retention_days" {
  description = "Retention of every log group (launcher, state machine, instance agent), in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days: use a value CloudWatch Logs accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "kms_key_arn" {
  description = "Existing KMS key for the model bucket and the log groups. Null: SSE-S3 for the bucket (or a created key with create_kms_key) and AWS-owned keys for logs. The key policy must allow the CloudWatch Logs service principal."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]+$", var.kms_key_arn))
    error_message = "kms_key_arn: give a key ARN such as arn:aws:kms:eu-west-1:123456789012:key/<uuid> (not an alias), or null."
  }
}

variable "create_kms_key" {
  description = "Create a KMS key (rotation on) for the model bucket when kms_key_arn is null."
  type        = bool
  default     = false
}

variable "model_bucket_force_destroy" {
  description = "Let `terraform destroy` delete the model bucket with its models and results. Keep false outside sandboxes."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for every resource (the Project tag is added and cannot be overridden here)."
  type        = map(string)
  default     = {}

  validation {
    condition     = !contains(keys(var.tags), "Project")
    error_message = "tags: do not set Project; it is always var.name, because the IAM conditions key on it."
  }
}

# ---- Monitoring ------------------------------------------------------------------------------

variable "alarm_email" {
  description = "E-mail address that receives the alarms (it must confirm the subscription). Null: subscribe to the alarm_topic_arn output yourself."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_email == null || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alarm_email))
    error_message = "alarm_email: give one e-mail address such as ops@example.com, or null."
  }
}

variable "alarm_topic_kms_key_arn" {
  description = "KMS key for the alarm topic; its key policy must let cloudwatch.amazonaws.com use it. Null creates a dedicated key (about $1/month)."
  type        = string
  default     = null
}

provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}

# Timeouts nest from the inside out; a plan that breaks the nesting stops here, before any
# resource is touched.
data "aws_partition" "current" {
  lifecycle {
    precondition {
      condition     = var.max_instance_lifetime_minutes * 60 > var.execution_timeout_seconds
      error_message = "max_instance_lifetime_minutes (${var.max_instance_lifetime_minutes} min) must exceed execution_timeout_seconds (${var.execution_timeout_seconds} s): the instance's hard deadline is the last net and must never cut a run the workflow still allows."
    }

    precondition {
      condition     = var.activity_timeout_seconds < var.execution_timeout_seconds
      error_message = "activity_timeout_seconds (${var.activity_timeout_seconds}) must be below execution_timeout_seconds (${var.execution_timeout_seconds}), which also covers the boot and the wait for the task."
    }

    precondition {
      condition     = var.max_runtime_seconds < var.activity_timeout_seconds
      error_message = "max_runtime_seconds (${var.max_runtime_seconds}) must be below activity_timeout_seconds (${var.activity_timeout_seconds}), which also covers the model copy and the results upload."
    }

    precondition {
      condition     = var.heartbeat_timeout_seconds < var.activity_timeout_seconds
      error_message = "heartbeat_timeout_seconds (${var.heartbeat_timeout_seconds}) must be below activity_timeout_seconds (${var.activity_timeout_seconds})."
    }

    precondition {
      condition     = var.task_wait_seconds < var.execution_timeout_seconds
      error_message = "task_wait_seconds (${var.task_wait_seconds}) must be below execution_timeout_seconds (${var.execution_timeout_seconds})."
    }
  }
}


locals {
  tags = merge(var.tags, { Project = var.name })

  state_machine_name = "${var.name}-weekly-run"

  # "resolve:ssm:<parameter>[:<version>]" -> the parameter name the launcher must be allowed to read.
  ami_ssm_parameter = startswith(var.ami, "resolve:ssm:") ? regex("^resolve:ssm:([^:]+)", var.ami)[0] : null

  # An ECR image -> its repository's ARN, for the instance role's pull permissions; else null.
  ecr_image = var.container_image == null ? null : try(regex("^([0-9]{12})\\.dkr\\.ecr(?:-fips)?\\.([a-z0-9-]+)\\.amazonaws\\.com(?:\\.cn)?/([a-z0-9._/-]+?)(?::[A-Za-z0-9_.-]+)?(?:@sha256:[0-9a-f]{64})?$", var.container_image), null)
  # The repository is in this deployment's partition (ECR pulls do not cross partitions).
  ecr_repository_arn = local.ecr_image == null ? null : format(
    "arn:%s:ecr:%s:%s:repository/%s",
    data.aws_partition.current.partition, local.ecr_image[1], local.ecr_image[0], local.ecr_image[2],
  )

  # The agent's configuration (schema: instance_agent/config.py; keys: docs/design.md).
  agent_config = {
    region       = var.region
    activity_arn = module.workflow.activity_arn
    model = {
      bucket = module.model_bucket.bucket_name
      prefix = var.model_prefix
    }
    storage = {
      mount_point                = "/mnt/model-store"
      allow_root_volume_fallback = var.allow_root_volume_fallback
    }
    # A quarter of the limit: three heartbeats may be lost before the task times out.
    heartbeat_interval_seconds = max(5, floor(var.heartbeat_timeout_seconds / 4))
    task_wait_seconds          = var.task_wait_seconds
    run = {
      command         = var.model_command
      shell_command   = var.model_shell_command
      container_image = var.container_image
    }
    warm                = { paths = var.warm_paths }
    max_runtime_seconds = var.max_runtime_seconds
    # The run's EMF metrics line goes to the launcher's namespace; the root volume prices run.json.
    metrics         = { namespace = var.name }
    root_volume_gib = var.root_volume_size_gib
  }

  console_domain = {
    "aws"        = "console.aws.amazon.com"
    "aws-cn"     = "console.amazonaws.cn"
    "aws-us-gov" = "console.amazonaws-us-gov.com"
  }
}

module "model_bucket" {
  source = "./modules/model_bucket"

  bucket_prefix  = "${var.name}-"
  force_destroy  = var.model_bucket_force_destroy
  kms_key_arn    = var.kms_key_arn
  create_kms_key = var.create_kms_key

  tags = local.tags
}

# The agent artifact. Its version id goes into the user data, so each new build makes a new
# launch template version and the next run boots with it.
resource "aws_s3_object" "agent_artifact" {
  bucket       = module.model_bucket.bucket_name
  key          = "${module.model_bucket.prefixes.agent}instance-agent.tar.gz"
  source       = var.agent_artifact_path
  source_hash  = filemd5(var.agent_artifact_path)
  content_type = "application/gzip"

  tags = local.tags
}

resource "aws_cloudwatch_log_group" "agent" {
  #checkov:skip=CKV_AWS_338:Retention is a variable (default 30 days): agent logs are operational, not audit records.
  #checkov:skip=CKV_AWS_158:KMS is optional (kms_key_arn); the default AWS-owned encryption fits operational logs.
  name              = "/${var.name}/instance-agent"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

module "instance_role" {
  source = "./modules/instance_role"

  name             = "${var.name}-instance"
  model_bucket_arn = module.model_bucket.bucket_arn
  read_prefixes    = [module.model_bucket.prefixes.models, module.model_bucket.prefixes.agent]
  write_prefix     = module.model_bucket.prefixes.runs
  kms_key_arn      = module.model_bucket.kms_key_arn
  activity_arn     = module.workflow.activity_arn
  log_group_arn    = aws_cloudwatch_log_group.agent.arn
  # Only when the model's image is in ECR; scoped to its repository.
  ecr_repository_arn = local.ecr_repository_arn

  tags = local.tags
}

module "launch_template" {
  source = "./modules/launch_template"

  name                   = var.name
  vpc_id                 = var.vpc_id
  ami                    = var.ami
  default_instance_type  = var.instance_types[0]
  instance_profile_arn   = module.instance_role.instance_profile_arn
  root_volume_size_gib   = var.root_volume_size_gib
  max_lifetime_minutes   = var.max_instance_lifetime_minutes
  agent_config           = local.agent_config
  agent_artifact_s3_uri  = "s3://${aws_s3_object.agent_artifact.bucket}/${aws_s3_object.agent_artifact.key}"
  agent_artifact_version = coalesce(aws_s3_object.agent_artifact.version_id, aws_s3_object.agent_artifact.etag)
  region                 = var.region
  log_group_name         = aws_cloudwatch_log_group.agent.name
  instance_tags          = { Project = var.name }

  # The root volume's cold start: off (null) unless the operator pays for a provisioned rate.
  root_volume_initialization_rate = var.root_volume_initialization_rate

  tags = local.tags
}

module "launcher_function" {
  source = "./modules/launcher_function"

  name                          = "${var.name}-launcher"
  project_name                  = var.name
  source_dir                    = "${path.module}/../functions"
  build_dir                     = "${path.module}/build"
  architecture                  = var.lambda_architecture
  powertools_layer_version      = var.powertools_layer_version
  log_retention_days            = var.log_retention_days
  kms_key_arn                   = var.kms_key_arn
  launch_template_id            = module.launch_template.launch_template_id
  launch_template_arn           = module.launch_template.launch_template_arn
  launch_template_version       = tostring(module.launch_template.launch_template_latest_version)
  instance_role_arn             = module.instance_role.role_arn
  ami_ssm_parameter             = local.ami_ssm_parameter
  state_machine_name            = local.state_machine_name
  activity_arn                  = module.workflow.activity_arn
  max_instance_lifetime_seconds = var.max_instance_lifetime_minutes * 60
  run_records_bucket_arn        = module.model_bucket.bucket_arn
  run_records_prefix            = module.model_bucket.prefixes.runs
  run_records_kms_key_arn       = module.model_bucket.kms_key_arn

  tags = local.tags
}

module "workflow" {
  source = "./modules/workflow"

  name                  = local.state_machine_name
  launcher_function_arn = module.launcher_function.function_arn
  model_bucket_name     = module.model_bucket.bucket_name
  run_defaults = {
    instance_types      = var.instance_types
    subnet_ids          = var.subnet_ids
    model_prefix        = var.model_prefix
    max_runtime_seconds = var.max_runtime_seconds
    parameters          = var.run_parameters
  }
  heartbeat_timeout_seconds = var.heartbeat_timeout_seconds
  activity_timeout_seconds  = var.activity_timeout_seconds
  execution_timeout_seconds = var.execution_timeout_seconds
  schedule_expression       = var.schedule_expression
  schedule_timezone         = var.schedule_timezone
  schedule_enabled          = var.schedule_enabled
  log_retention_days        = var.log_retention_days
  kms_key_arn               = var.kms_key_arn

  tags = local.tags
}

module "safety_nets" {
  source = "./modules/safety_nets"

  name                        = var.name
  state_machine_arn           = module.workflow.state_machine_arn
  launcher_function_arn       = module.launcher_function.function_arn
  launcher_function_name      = module.launcher_function.function_name
  sweeper_schedule_expression = var.sweeper_schedule_expression

  tags = local.tags
}

module "monitoring" {
  source = "./modules/monitoring"

  name                   = var.name
  state_machine_arn      = module.workflow.state_machine_arn
  launcher_function_name = module.launcher_function.function_name
  metrics_namespace      = var.name
  agent_log_group_name   = aws_cloudwatch_log_group.agent.name
  dead_letter_queue_names = {
    schedule    = module.workflow.schedule_dead_letter_queue_name
    safety_nets = module.safety_nets.dead_letter_queue_name
  }
  alarm_email = var.alarm_email
  kms_key_arn = var.alarm_topic_kms_key_arn

  tags = local.tags
}

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.region
  account_id = data.aws_caller_identity.current.account_id

  # Built, not referenced: the state machine depends on this function, so referencing it here
  # would be a dependency cycle.
  state_machine_arn = "arn:${local.partition}:states:${local.region}:${local.account_id}:stateMachine:${var.state_machine_name}"
  executions_arn    = "arn:${local.partition}:states:${local.region}:${local.account_id}:execution:${var.state_machine_name}:*"

  # The public Powertools v3 layer, one per Python version and architecture.
  powertools_layer_arn = "arn:${local.partition}:lambda:${local.region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-${var.architecture}:${var.powertools_layer_version}"

  ec2_arn_prefix = "arn:${local.partition}:ec2:${local.region}:${local.account_id}"
}

data "archive_file" "this" {
  type        = "zip"
  source_dir  = var.source_dir
  output_path = "${var.build_dir}/${var.name}.zip"
  excludes    = ["**/__pycache__/**", "**/*.pyc", "**/.mypy_cache/**", "**/.pytest_cache/**"]
}

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_338:Retention is a variable (default 30 days): launcher logs are operational, not audit records.
  #checkov:skip=CKV_AWS_158:KMS is optional (kms_key_arn); the default AWS-owned encryption fits operational logs.
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn

  tags = var.tags
}

data "aws_iam_policy_document" "assume_role" {
  statement {
    sid     = "LambdaAssumesRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.${data.aws_partition.current.dns_suffix}"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = "${var.name}-role"
  description        = "Launcher of the scheduled GPU model run: runs, finds and terminates the project's instances."
  assume_role_policy = data.aws_iam_policy_document.assume_role.json

  tags = var.tags
}

data "aws_iam_policy_document" "this" {
  # RunInstances authorizes every resource of the request. The instance and its volumes must
  # come from this launch template, and the instance must carry the project tag.
  statement {
    sid       = "RunInstancesFromThisTemplateWithProjectTag"
    actions   = ["ec2:RunInstances"]
    resources = ["${local.ec2_arn_prefix}:instance/*"]

    condition {
      test     = "ArnEquals"
      variable = "ec2:LaunchTemplate"
      values   = [var.launch_template_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/Project"
      values   = [var.project_name]
    }
  }

  statement {
    sid     = "RunInstancesOtherResourcesOfThisTemplate"
    actions = ["ec2:RunInstances"]
    resources = [
      "${local.ec2_arn_prefix}:volume/*",
      "${local.ec2_arn_prefix}:network-interface/*",
      "${local.ec2_arn_prefix}:subnet/*",
      "${local.ec2_arn_prefix}:security-group/*",
      "arn:${local.partition}:ec2:${local.region}::image/*",
    ]

    condition {
      test     = "ArnEquals"
      variable = "ec2:LaunchTemplate"
      values   = [var.launch_template_arn]
    }
  }

  statement {
    sid       = "UseThisLaunchTemplate"
    actions   = ["ec2:RunInstances"]
    resources = [var.launch_template_arn]
  }

  # Tags only as part of the launch, never on existing resources.
  statement {
    sid       = "TagOnLaunchOnly"
    actions   = ["ec2:CreateTags"]
    resources = ["${local.ec2_arn_prefix}:instance/*", "${local.ec2_arn_prefix}:volume/*"]

    condition {
      test     = "StringEquals"
      variable = "ec2:CreateAction"
      values   = ["RunInstances"]
    }
  }

  statement {
    sid       = "TerminateProjectInstancesOnly"
    actions   = ["ec2:TerminateInstances"]
    resources = ["${local.ec2_arn_prefix}:instance/*"]

    condition {
      test     = "StringEquals"
      variable = "ec2:ResourceTag/Project"
      values   = [var.project_name]
    }
  }

  # EC2 Describe* calls support no resource-level permissions: "*" is the only valid resource.
  statement {
    sid = "DescribeEc2"
    actions = [
      "ec2:DescribeInstances",
      "ec2:DescribeInstanceStatus",
      "ec2:DescribeSubnets",
      "ec2:DescribeLaunchTemplates",
      "ec2:DescribeLaunchTemplateVersions",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "PassInstanceRoleToEc2Only"
    actions   = ["iam:PassRole"]
    resources = [var.instance_role_arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ec2.${data.aws_partition.current.dns_suffix}"]
    }
  }

  # One run at a time: `start` lists this state machine's RUNNING executions; the sweeper
  # asks whether an instance's execution still runs.
  statement {
    sid       = "ListExecutionsOfThisStateMachine"
    actions   = ["states:ListExecutions"]
    resources = [local.state_machine_arn]
  }

  # start and cleanup confirm an execution's status instead of trusting their event;
  # instance_lost reads where the run is and fails it (StopExecution) when its instance is gone.
  statement {
    sid       = "DescribeExecutionsOfThisStateMachine"
    actions   = ["states:DescribeExecution", "states:GetExecutionHistory", "states:StopExecution"]
    resources = [local.executions_arn]
  }

  # instance_lost fails the run's pending task when no agent ever took it.
  statement {
    sid       = "FailTheRunsPendingTask"
    actions   = ["states:GetActivityTask", "states:SendTaskFailure"]
    resources = [var.activity_arn]
  }

  # stop writes a minimal run record when the agent wrote none; GetObject lets it tell "exists"
  # from "denied" (a conditional PUT answers 412 either way only when it may read).
  statement {
    sid       = "WriteRunRecords"
    actions   = ["s3:PutObject", "s3:GetObject"]
    resources = ["${var.run_records_bucket_arn}/${var.run_records_prefix}*"]
  }

  # stop corrects a SUCCEEDED record the workflow's error contradicts: that run's manifest goes.
  statement {
    sid       = "RetractResultsManifests"
    actions   = ["s3:DeleteObject"]
    resources = ["${var.run_records_bucket_arn}/${var.run_records_prefix}*/_manifest.json"]
  }

  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  # X-Ray's trace APIs support no resource-level permissions.
  statement {
    sid       = "XRayTraces"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = var.ami_ssm_parameter == null ? [] : [var.ami_ssm_parameter]

    content {
      sid     = "ResolveAmiParameter"
      actions = ["ssm:GetParameters", "ssm:GetParameter"]
      # Public AWS parameters have no account in their ARN; own parameters do.
      resources = [
        "arn:${local.partition}:ssm:${local.region}::parameter${statement.value}",
        "arn:${local.partition}:ssm:${local.region}:${local.account_id}:parameter${statement.value}",
      ]
    }
  }

  dynamic "statement" {
    for_each = var.run_records_kms_key_arn == null ? [] : [var.run_records_kms_key_arn]

    content {
      sid       = "EncryptRunRecords"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]

    content {
      sid       = "DecryptEnvironment"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "${var.name}-launcher"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_117:The function calls only AWS APIs; a VPC would add NAT or endpoints for no isolation gain.
  #checkov:skip=CKV_AWS_116:Step Functions invokes it synchronously and retries; the EventBridge and Scheduler targets carry their own dead-letter queue.
  #checkov:skip=CKV_AWS_272:Code signing needs a signing profile and an S3 artifact pipeline; the zip is built from this reviewed repository by Terraform.
  #checkov:skip=CKV_AWS_115:Reserved concurrency can fail in accounts with the minimum unreserved concurrency; one run at a time is enforced by the launcher itself.
  #checkov:skip=CKV_AWS_173:The environment holds no secrets (ids, names, numbers); set kms_key_arn to encrypt it with a customer managed key.
  function_name    = var.name
  description      = "Starts, stops and sweeps the scheduled GPU model instances"
  role             = aws_iam_role.this.arn
  runtime          = "python3.12"
  handler          = "launcher.app.handler"
  architectures    = [var.architecture]
  filename         = data.archive_file.this.output_path
  source_code_hash = data.archive_file.this.output_base64sha256
  memory_size      = var.memory_size
  timeout          = var.timeout_seconds
  layers           = [local.powertools_layer_arn]
  kms_key_arn      = var.kms_key_arn

  environment {
    variables = {
      LAUNCH_TEMPLATE_ID            = var.launch_template_id
      LAUNCH_TEMPLATE_VERSION       = var.launch_template_version
      PROJECT_NAME                  = var.project_name
      STATE_MACHINE_ARN             = local.state_machine_arn
      ACTIVITY_ARN                  = var.activity_arn
      MAX_INSTANCE_LIFETIME_SECONDS = tostring(var.max_instance_lifetime_seconds)
      POWERTOOLS_SERVICE_NAME       = "launcher"
      POWERTOOLS_METRICS_NAMESPACE  = var.project_name
    }
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.this.name
    # Powertools' Logger follows the level Lambda's advanced logging controls set.
    application_log_level = var.log_level
    system_log_level      = "WARN"
  }

  tracing_config {
    mode = "Active"
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.this, aws_cloudwatch_log_group.this]
}

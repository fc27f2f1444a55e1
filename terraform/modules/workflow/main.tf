data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  dns_suffix = data.aws_partition.current.dns_suffix

  # The template's variables are exactly those listed in docs/design.md.
  definition = templatefile("${path.module}/weekly_run.asl.json.tftpl", {
    launcher_function_arn     = var.launcher_function_arn
    activity_arn              = aws_sfn_activity.this.id
    model_bucket              = var.model_bucket_name
    run_defaults              = var.run_defaults
    heartbeat_timeout_seconds = var.heartbeat_timeout_seconds
    activity_timeout_seconds  = var.activity_timeout_seconds
    execution_timeout_seconds = var.execution_timeout_seconds
  })
}

resource "aws_sfn_activity" "this" {
  name = "${var.name}-run-model"

  tags = var.tags
}

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_338:Retention is a variable (default 30 days); execution history itself is kept 90 days by Step Functions.
  #checkov:skip=CKV_AWS_158:KMS is optional (kms_key_arn); the default AWS-owned encryption fits operational logs.
  # The /aws/vendedlogs/ prefix keeps the log delivery resource policy small (AWS guidance).
  name              = "/aws/vendedlogs/states/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn

  tags = var.tags
}

data "aws_iam_policy_document" "states_assume_role" {
  statement {
    sid     = "StepFunctionsAssumesRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["states.${local.dns_suffix}"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "states" {
  name               = "${var.name}-states"
  description        = "Role of the ${var.name} state machine: invoke the launcher, deliver logs and traces."
  assume_role_policy = data.aws_iam_policy_document.states_assume_role.json

  tags = var.tags
}

data "aws_iam_policy_document" "states" {
  statement {
    sid       = "InvokeLauncher"
    actions   = ["lambda:InvokeFunction"]
    resources = [var.launcher_function_arn, "${var.launcher_function_arn}:*"]
  }

  # Log delivery and X-Ray APIs support no resource-level permissions (AWS documents "*").
  statement {
    sid = "DeliverLogs"
    actions = [
      "logs:CreateLogDelivery",
      "logs:GetLogDelivery",
      "logs:UpdateLogDelivery",
      "logs:DeleteLogDelivery",
      "logs:ListLogDeliveries",
      "logs:PutResourcePolicy",
      "logs:DescribeResourcePolicies",
      "logs:DescribeLogGroups",
    ]
    resources = ["*"]
  }

  statement {
    sid = "XRayTraces"
    actions = [
      "xray:PutTraceSegments",
      "xray:PutTelemetryRecords",
      "xray:GetSamplingRules",
      "xray:GetSamplingTargets",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "states" {
  name   = "${var.name}-states"
  role   = aws_iam_role.states.id
  policy = data.aws_iam_policy_document.states.json
}

resource "aws_sfn_state_machine" "this" {
  name       = var.name
  type       = "STANDARD"
  role_arn   = aws_iam_role.states.arn
  definition = local.definition

  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.this.arn}:*"
    include_execution_data = true
    level                  = "ALL"
  }

  tracing_configuration {
    enabled = true
  }

  tags = var.tags

  # The role's policy must exist before Step Functions validates the log delivery.
  depends_on = [aws_iam_role_policy.states]
}

# Dead-letter queue of the schedule: a weekly run that Scheduler could not start lands here.
resource "aws_sqs_queue" "schedule_dlq" {
  name                      = "${var.name}-schedule-dlq"
  sqs_managed_sse_enabled   = true
  message_retention_seconds = 1209600

  tags = var.tags
}

data "aws_iam_policy_document" "scheduler_assume_role" {
  statement {
    sid     = "SchedulerAssumesRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["scheduler.${local.dns_suffix}"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  name               = "${var.name}-scheduler"
  description        = "Role of the ${var.name} schedule: start executions of this state machine only."
  assume_role_policy = data.aws_iam_policy_document.scheduler_assume_role.json

  tags = var.tags
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    sid       = "StartThisStateMachineOnly"
    actions   = ["states:StartExecution"]
    resources = [aws_sfn_state_machine.this.arn]
  }

  # Scheduler writes undeliverable events to the DLQ with the schedule's own role.
  statement {
    sid       = "SendToDeadLetterQueue"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.schedule_dlq.arn]
  }
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "${var.name}-scheduler"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}

resource "aws_scheduler_schedule" "this" {
  #checkov:skip=CKV_AWS_297:The schedule's only payload is the input "{}"; an AWS-owned key protects it and a CMK would add cost and a key policy for no data.
  name                         = "${var.name}-weekly"
  description                  = "Starts the ${var.name} state machine with {} (every run parameter at its default)"
  schedule_expression          = var.schedule_expression
  schedule_expression_timezone = var.schedule_timezone
  state                        = var.schedule_enabled ? "ENABLED" : "DISABLED"

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_sfn_state_machine.this.arn
    role_arn = aws_iam_role.scheduler.arn
    input    = "{}"

    retry_policy {
      maximum_retry_attempts       = var.schedule_retry.maximum_retry_attempts
      maximum_event_age_in_seconds = var.schedule_retry.maximum_event_age_in_seconds
    }

    dead_letter_config {
      arn = aws_sqs_queue.schedule_dlq.arn
    }
  }

  depends_on = [aws_iam_role_policy.scheduler]
}

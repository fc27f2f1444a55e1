data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  dns_suffix  = data.aws_partition.current.dns_suffix
  region      = data.aws_region.current.region
  create_key  = var.kms_key_arn == null
  kms_key_arn = local.create_key ? aws_kms_key.this[0].arn : var.kms_key_arn

  # Every alarm below: name -> definition. Sum >= 1 in one period: one event is enough to act.
  state_machine_alarms = {
    execution_failed = {
      metric      = "ExecutionsFailed"
      description = "A weekly run FAILED: its error and cause are in the execution (python -m gpurun status / logs <run>). The instance was terminated by StopInstance. See docs/operations.md, alarms."
    }
    execution_timed_out = {
      metric      = "ExecutionsTimedOut"
      description = "A weekly run hit the state machine's TimeoutSeconds: the instance never took its task or hung. The execution-status rule ran the launcher's cleanup. See docs/operations.md, alarms."
    }
    execution_aborted = {
      metric      = "ExecutionsAborted"
      description = "A weekly run was stopped from outside (console or StopExecution). The execution-status rule ran the launcher's cleanup. See docs/operations.md, alarms."
    }
  }
}

# ---- The alarm topic, encrypted with a key CloudWatch may use ---------------------------------

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:The standard key policy: it delegates the key to the account's IAM policies; "*" in a key policy means this key only.
  #checkov:skip=CKV_AWS_111:The standard key policy: it delegates the key to the account's IAM policies; "*" in a key policy means this key only.
  #checkov:skip=CKV_AWS_356:The standard key policy: it delegates the key to the account's IAM policies; "*" in a key policy means this key only.
  count = local.create_key ? 1 : 0

  statement {
    sid       = "AccountAdministersThroughIam"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }

  # CloudWatch alarms cannot publish to a topic encrypted with the AWS-managed SNS key: they need
  # a customer managed key that lets them use it.
  statement {
    sid       = "CloudWatchAlarmsPublish"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.${local.dns_suffix}"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_kms_key" "this" {
  count = local.create_key ? 1 : 0

  description             = "Encryption of the ${var.name} alarm topic"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms[0].json

  tags = var.tags
}

resource "aws_kms_alias" "this" {
  count = local.create_key ? 1 : 0

  name          = "alias/${var.name}-alarms"
  target_key_id = aws_kms_key.this[0].key_id
}

resource "aws_sns_topic" "this" {
  name              = "${var.name}-alarms"
  display_name      = "${var.name} alarms"
  kms_master_key_id = local.kms_key_arn

  tags = var.tags
}

data "aws_iam_policy_document" "topic" {
  statement {
    sid       = "CloudWatchAlarmsOfThisAccountPublish"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.this.arn]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.${local.dns_suffix}"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_sns_topic_policy" "this" {
  arn    = aws_sns_topic.this.arn
  policy = data.aws_iam_policy_document.topic.json
}

resource "aws_sns_topic_subscription" "email" {
  count = var.alarm_email == null ? 0 : 1

  topic_arn = aws_sns_topic.this.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

# ---- Alarms ---------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "state_machine" {
  for_each = local.state_machine_alarms

  alarm_name          = "${var.name}-${replace(each.key, "_", "-")}"
  alarm_description   = each.value.description
  namespace           = "AWS/States"
  metric_name         = each.value.metric
  dimensions          = { StateMachineArn = var.state_machine_arn }
  statistic           = "Sum"
  period              = var.failure_evaluation_period_seconds
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.this.arn]

  tags = var.tags
}

# The sweeper (launcher action `sweep`) is the one component that looks at every project
# instance's age, whatever happened to the agent, the workflow and the execution-status rule: it
# publishes InstancesPastLifetime for each instance it finds past MAX_INSTANCE_LIFETIME_SECONDS
# (and terminates it). A metric from the agent could not see an agent that died, and EventBridge
# has no event for "still running".
resource "aws_cloudwatch_metric_alarm" "instance_past_lifetime" {
  alarm_name          = "${var.name}-instance-past-lifetime"
  alarm_description   = "The sweeper found (and terminated) a project instance older than its maximum lifetime: the agent's shutdown, StopInstance, the cleanup rule and the hard deadline all missed it. See docs/operations.md, alarms."
  namespace           = var.metrics_namespace
  metric_name         = "InstancesPastLifetime"
  dimensions          = { service = "launcher" }
  statistic           = "Sum"
  period              = 3600
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.this.arn]

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "launcher_errors" {
  alarm_name          = "${var.name}-launcher-errors"
  alarm_description   = "The launcher Lambda raised an error. With a failed run at the same time it is that run's start (capacity, bad input); alone, the cleanup or the sweeper is failing: read its log group. See docs/operations.md, alarms."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = var.launcher_function_name }
  statistic           = "Sum"
  period              = var.failure_evaluation_period_seconds
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.this.arn]

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "dead_letter_queue" {
  for_each = var.dead_letter_queue_names

  alarm_name          = "${var.name}-${replace(each.key, "_", "-")}-dlq-not-empty"
  alarm_description   = "The ${each.key} dead-letter queue (${each.value}) holds a message: an event (a weekly start, or a cleanup/sweep) could not be delivered. See docs/operations.md, alarms."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.this.arn]

  tags = var.tags
}

# ---- Dashboard ------------------------------------------------------------------------------

locals {
  agent_dimensions = ["Service", "instance-agent"]
  # Every duration the agent's per-run EMF line holds (instance_agent/run_metrics.py METRIC_UNITS;
  # tests/contracts/test_dashboard_metrics.py keeps the two in step).
  boot_phase_metrics = [
    "LaunchToBootSeconds", "BootToCloudInitSeconds", "CloudInitSeconds", "BootstrapSeconds",
    "BootToAgentSeconds",
  ]
  run_phase_metrics = [
    "StorageSeconds", "ImagePullSeconds", "WarmSeconds", "WaitForTaskSeconds", "ModelCopySeconds",
    "ModelFirstOutputSeconds", "BootToFirstOutputSeconds", "ModelRunSeconds",
    "ResultsUploadSeconds", "InstanceLifetimeSeconds",
  ]
  agent_metric_widgets = [
    { title = "Boot phases per run (seconds)", view = "bar", metrics = local.boot_phase_metrics },
    { title = "Run phases per run (seconds)", view = "bar", metrics = local.run_phase_metrics },
    { title = "Model copy throughput (MB/s)", view = "timeSeries", metrics = ["ModelCopyMBps"] },
  ]
  # functions/launcher/metric_names.py COUNTS.
  launcher_metrics = [
    "CapacityFallbacks", "InstancesLaunched", "InstancesReused", "InstancesTerminated",
    "InstancesPastLifetime", "RunRecordsWritten", "RunRecordsCorrected", "RunsFailedByLostInstance",
  ]
  last_runs_query = join(" | ", [
    "SOURCE '${var.agent_log_group_name}'",
    "fields @timestamp, ExecutionName, InstanceType, RunSucceeded, BootToAgentSeconds, StorageSeconds, ImagePullSeconds, WaitForTaskSeconds, ModelCopySeconds, ModelCopyMBps, ModelRunSeconds, ResultsUploadSeconds, InstanceLifetimeSeconds",
    "filter ispresent(InstanceLifetimeSeconds) and Service = 'instance-agent'",
    "sort @timestamp desc",
    "limit 20",
  ])
  alarm_arns = concat(
    [for a in aws_cloudwatch_metric_alarm.state_machine : a.arn],
    [aws_cloudwatch_metric_alarm.instance_past_lifetime.arn, aws_cloudwatch_metric_alarm.launcher_errors.arn],
    [for a in aws_cloudwatch_metric_alarm.dead_letter_queue : a.arn],
  )
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = "${var.name}-runs"
  dashboard_body = jsonencode({
    start = "-P90D"
    widgets = concat([
      {
        type = "log", x = 0, y = 0, width = 24, height = 7
        properties = {
          title  = "Last runs: phase durations in seconds (one EMF line per run from the agent)"
          region = local.region
          query  = local.last_runs_query
          view   = "table"
        }
      },
      ], [
      # The agent's per-run metrics, side by side (local.agent_metric_widgets).
      for i, w in local.agent_metric_widgets : {
        type = "metric", x = i * 8, y = 7, width = 8, height = 7
        properties = {
          title   = w.title
          region  = local.region
          view    = w.view
          stat    = "Maximum"
          period  = 86400
          metrics = [for m in w.metrics : [var.metrics_namespace, m, local.agent_dimensions[0], local.agent_dimensions[1]]]
        }
      }
      ], [
      {
        type = "metric", x = 0, y = 14, width = 12, height = 6
        properties = {
          title  = "Executions"
          region = local.region
          view   = "bar"
          stat   = "Sum"
          period = 86400
          metrics = [
            for m in ["ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"] :
            ["AWS/States", m, "StateMachineArn", var.state_machine_arn]
          ]
        }
      },
      {
        type = "metric", x = 12, y = 14, width = 12, height = 6
        properties = {
          title  = "Launcher: launches, capacity fallbacks, terminations, records"
          region = local.region
          view   = "bar"
          stat   = "Sum"
          period = 86400
          metrics = [
            for m in local.launcher_metrics : [var.metrics_namespace, m, "service", "launcher"]
          ]
        }
      },
      {
        type = "alarm", x = 0, y = 20, width = 24, height = 3
        properties = {
          title  = "Alarms"
          alarms = local.alarm_arns
        }
      },
    ])
  })
}

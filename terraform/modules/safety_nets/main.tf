data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

# Net 2b: executions that end without reaching StopInstance (state-machine timeout, abort from
# the console, StopInstance itself failing) still get their instance terminated. EventBridge
# rules see these status changes; a Catch inside the ASL does not run for them.
resource "aws_cloudwatch_event_rule" "execution_ended_badly" {
  name        = "${var.name}-execution-ended"
  description = "FAILED, TIMED_OUT or ABORTED executions of ${var.state_machine_arn} -> launcher cleanup"

  event_pattern = jsonencode({
    source        = ["aws.states"]
    "detail-type" = ["Step Functions Execution Status Change"]
    detail = {
      status          = ["FAILED", "TIMED_OUT", "ABORTED"]
      stateMachineArn = [var.state_machine_arn]
    }
  })

  tags = var.tags
}

resource "aws_cloudwatch_event_target" "cleanup" {
  rule      = aws_cloudwatch_event_rule.execution_ended_badly.name
  target_id = "launcher-cleanup"
  arn       = var.launcher_function_arn

  input_transformer {
    input_paths = {
      execution_arn = "$.detail.executionArn"
      status        = "$.detail.status"
    }
    input_template = "{\"action\":\"cleanup\",\"execution_arn\":<execution_arn>,\"status\":<status>}"
  }

  retry_policy {
    maximum_retry_attempts       = var.retry.maximum_retry_attempts
    maximum_event_age_in_seconds = var.retry.maximum_event_age_in_seconds
  }

  dead_letter_config {
    arn = aws_sqs_queue.dlq.arn
  }
}

resource "aws_lambda_permission" "cleanup" {
  statement_id   = "AllowCleanupFromExecutionStatusRule"
  action         = "lambda:InvokeFunction"
  function_name  = var.launcher_function_name
  principal      = "events.${data.aws_partition.current.dns_suffix}"
  source_arn     = aws_cloudwatch_event_rule.execution_ended_badly.arn
  source_account = data.aws_caller_identity.current.account_id
}

# Net 2c: an instance that goes away before its run ended (the agent died before polling, the
# hard deadline, a person, a spot reclaim) fails its execution at once instead of at the state
# machine's timeout. EC2 state-change events carry no tags: the launcher keeps only instances
# with the project's tag, and only while their execution still waits on them.
resource "aws_cloudwatch_event_rule" "instance_lost" {
  name        = "${var.name}-instance-lost"
  description = "EC2 instances shutting down or terminated -> launcher instance_lost (it keeps only ${var.name}'s)"

  event_pattern = jsonencode({
    source        = ["aws.ec2"]
    "detail-type" = ["EC2 Instance State-change Notification"]
    detail = {
      state = ["shutting-down", "terminated"]
    }
  })

  tags = var.tags
}

resource "aws_cloudwatch_event_target" "instance_lost" {
  rule      = aws_cloudwatch_event_rule.instance_lost.name
  target_id = "launcher-instance-lost"
  arn       = var.launcher_function_arn

  input_transformer {
    input_paths = {
      instance_id = "$.detail.instance-id"
      state       = "$.detail.state"
    }
    input_template = "{\"action\":\"instance_lost\",\"instance_id\":<instance_id>,\"state\":<state>}"
  }

  retry_policy {
    maximum_retry_attempts       = var.retry.maximum_retry_attempts
    maximum_event_age_in_seconds = var.retry.maximum_event_age_in_seconds
  }

  dead_letter_config {
    arn = aws_sqs_queue.dlq.arn
  }
}

resource "aws_lambda_permission" "instance_lost" {
  statement_id   = "AllowInstanceLostFromEc2StateRule"
  action         = "lambda:InvokeFunction"
  function_name  = var.launcher_function_name
  principal      = "events.${data.aws_partition.current.dns_suffix}"
  source_arn     = aws_cloudwatch_event_rule.instance_lost.arn
  source_account = data.aws_caller_identity.current.account_id
}

# Undelivered cleanup, instance-lost and sweep events land here (and the sweeper's next tick retries anyway).
resource "aws_sqs_queue" "dlq" {
  name                      = "${var.name}-safety-nets-dlq"
  sqs_managed_sse_enabled   = true
  message_retention_seconds = 1209600

  tags = var.tags
}

data "aws_iam_policy_document" "dlq" {
  statement {
    sid       = "EventBridgeRuleSendsUndelivered"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq.arn]

    principals {
      type        = "Service"
      identifiers = ["events.${data.aws_partition.current.dns_suffix}"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values = [
        aws_cloudwatch_event_rule.execution_ended_badly.arn,
        aws_cloudwatch_event_rule.instance_lost.arn,
      ]
    }
  }
}

resource "aws_sqs_queue_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id
  policy    = data.aws_iam_policy_document.dlq.json
}

# Net 2c: the sweeper terminates project instances whose execution is no longer running, or
# that outlived their maximum lifetime, whatever happened to the events above.
data "aws_iam_policy_document" "sweeper_assume_role" {
  statement {
    sid     = "SchedulerAssumesRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["scheduler.${data.aws_partition.current.dns_suffix}"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "sweeper" {
  name               = "${var.name}-sweeper"
  description        = "Role of the ${var.name} sweeper schedule: invoke the launcher only."
  assume_role_policy = data.aws_iam_policy_document.sweeper_assume_role.json

  tags = var.tags
}

data "aws_iam_policy_document" "sweeper" {
  statement {
    sid       = "InvokeLauncherOnly"
    actions   = ["lambda:InvokeFunction"]
    resources = [var.launcher_function_arn, "${var.launcher_function_arn}:*"]
  }

  statement {
    sid       = "SendToDeadLetterQueue"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq.arn]
  }
}

resource "aws_iam_role_policy" "sweeper" {
  name   = "${var.name}-sweeper"
  role   = aws_iam_role.sweeper.id
  policy = data.aws_iam_policy_document.sweeper.json
}

resource "aws_scheduler_schedule" "sweeper" {
  #checkov:skip=CKV_AWS_297:The schedule's only payload is {"action":"sweep"}; an AWS-owned key protects it and a CMK would add cost and a key policy for no data.
  name                = "${var.name}-sweeper"
  description         = "Invokes the launcher with {\"action\":\"sweep\"}"
  schedule_expression = var.sweeper_schedule_expression
  state               = var.sweeper_enabled ? "ENABLED" : "DISABLED"

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = var.launcher_function_arn
    role_arn = aws_iam_role.sweeper.arn
    input    = jsonencode({ action = "sweep" })

    retry_policy {
      maximum_retry_attempts       = var.retry.maximum_retry_attempts
      maximum_event_age_in_seconds = var.retry.maximum_event_age_in_seconds
    }

    dead_letter_config {
      arn = aws_sqs_queue.dlq.arn
    }
  }

  depends_on = [aws_iam_role_policy.sweeper]
}

# terraform test: the model bucket's protections and the nets that terminate a forgotten
# instance, each module on its own against the mocked AWS provider.

mock_provider "aws" {
  override_during = plan
  source          = "./tests/mocks"
}

run "the_model_bucket_is_encrypted_private_and_versioned" {
  command = plan

  module {
    source = "./modules/model_bucket"
  }

  variables {
    bucket_prefix = "scheduled-gpu-model-"
  }

  assert {
    condition     = one(one(aws_s3_bucket_server_side_encryption_configuration.this.rule).apply_server_side_encryption_by_default).sse_algorithm == "AES256"
    error_message = "Without a KMS key the bucket is encrypted with SSE-S3."
  }

  assert {
    condition = alltrue([
      aws_s3_bucket_public_access_block.this.block_public_acls,
      aws_s3_bucket_public_access_block.this.block_public_policy,
      aws_s3_bucket_public_access_block.this.ignore_public_acls,
      aws_s3_bucket_public_access_block.this.restrict_public_buckets,
    ])
    error_message = "Every public access block setting is on."
  }

  assert {
    condition     = aws_s3_bucket_versioning.this.versioning_configuration[0].status == "Enabled"
    error_message = "The bucket is versioned (the agent artifact's version id pins each launch template version)."
  }

  assert {
    condition = anytrue([
      for c in one([for s in data.aws_iam_policy_document.bucket.statement : s if s.sid == "DenyInsecureTransport"]).condition :
      c.variable == "aws:SecureTransport" && c.values == tolist(["false"])
    ])
    error_message = "The bucket policy denies every request without TLS."
  }
}

run "a_created_kms_key_encrypts_the_bucket" {
  command = plan

  module {
    source = "./modules/model_bucket"
  }

  variables {
    bucket_prefix  = "scheduled-gpu-model-"
    create_kms_key = true
  }

  assert {
    condition     = one(one(aws_s3_bucket_server_side_encryption_configuration.this.rule).apply_server_side_encryption_by_default).sse_algorithm == "aws:kms" && aws_kms_key.this[0].enable_key_rotation
    error_message = "create_kms_key makes a rotated key the bucket's default encryption."
  }
}

run "an_execution_that_ends_badly_reaches_the_cleanup" {
  command = plan

  module {
    source = "./modules/safety_nets"
  }

  variables {
    name                   = "scheduled-gpu-model"
    state_machine_arn      = "arn:aws:states:eu-west-1:123456789012:stateMachine:scheduled-gpu-model-weekly-run"
    launcher_function_arn  = "arn:aws:lambda:eu-west-1:123456789012:function:scheduled-gpu-model-launcher"
    launcher_function_name = "scheduled-gpu-model-launcher"
  }

  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.execution_ended_badly.event_pattern).detail.status == ["FAILED", "TIMED_OUT", "ABORTED"]
    error_message = "A timed-out or aborted execution skips every Catch: the rule must see FAILED, TIMED_OUT and ABORTED."
  }

  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.execution_ended_badly.event_pattern).detail.stateMachineArn == [var.state_machine_arn]
    error_message = "The rule watches this state machine only."
  }

  assert {
    condition     = strcontains(aws_cloudwatch_event_target.cleanup.input_transformer[0].input_template, "\"action\":\"cleanup\"")
    error_message = "The rule invokes the launcher's cleanup action."
  }

  assert {
    condition     = aws_scheduler_schedule.sweeper.schedule_expression == "rate(15 minutes)" && aws_scheduler_schedule.sweeper.state == "ENABLED"
    error_message = "The sweeper runs every 15 minutes by default."
  }
}

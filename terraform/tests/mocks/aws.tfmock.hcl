# Mocked hashicorp/aws for the terraform test files (mock_provider "aws" { source = "./tests/mocks" }).
# A mock_* block per type the modules use: with override_during = plan, Terraform generates
# their computed values at plan time (random strings unless given here).

mock_data "aws_partition" {
  defaults = {
    partition  = "aws"
    dns_suffix = "amazonaws.com"
  }
}

mock_data "aws_region" {
  defaults = {
    region = "eu-west-1"
  }
}

mock_data "aws_caller_identity" {
  defaults = {
    account_id = "123456789012"
  }
}

mock_data "aws_iam_policy_document" {
  defaults = {
    json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
  }
}

mock_resource "aws_sfn_activity" {
  defaults = {
    id = "arn:aws:states:eu-west-1:123456789012:activity:scheduled-gpu-model-weekly-run-run-model"
  }
}

mock_resource "aws_sfn_state_machine" {
  defaults = {
    arn = "arn:aws:states:eu-west-1:123456789012:stateMachine:scheduled-gpu-model-weekly-run"
  }
}

mock_resource "aws_s3_bucket" {
  defaults = {
    id  = "scheduled-gpu-model-20261202000000000000000001"
    arn = "arn:aws:s3:::scheduled-gpu-model-20261202000000000000000001"
  }
}

mock_resource "aws_launch_template" {
  defaults = {
    id             = "lt-0123456789abcdef0"
    arn            = "arn:aws:ec2:eu-west-1:123456789012:launch-template/lt-0123456789abcdef0"
    latest_version = 1
  }
}

mock_resource "aws_lambda_function" {
  defaults = {
    arn = "arn:aws:lambda:eu-west-1:123456789012:function:scheduled-gpu-model-launcher"
  }
}

mock_resource "aws_iam_role" {
  defaults = {
    arn = "arn:aws:iam::123456789012:role/scheduled-gpu-model-role"
  }
}

mock_resource "aws_cloudwatch_log_group" {
  defaults = {
    arn = "arn:aws:logs:eu-west-1:123456789012:log-group:/scheduled-gpu-model"
  }
}

mock_resource "aws_cloudwatch_dashboard" {}
mock_resource "aws_cloudwatch_event_rule" {}
mock_resource "aws_cloudwatch_event_target" {}
mock_resource "aws_cloudwatch_metric_alarm" {}
mock_resource "aws_iam_instance_profile" {}
mock_resource "aws_iam_role_policy" {}
mock_resource "aws_kms_alias" {}
mock_resource "aws_kms_key" {}
mock_resource "aws_lambda_permission" {}
mock_resource "aws_s3_bucket_lifecycle_configuration" {}
mock_resource "aws_s3_bucket_ownership_controls" {}
mock_resource "aws_s3_bucket_policy" {}
mock_resource "aws_s3_bucket_public_access_block" {}
mock_resource "aws_s3_bucket_server_side_encryption_configuration" {}
mock_resource "aws_s3_bucket_versioning" {}
mock_resource "aws_s3_object" {}
mock_resource "aws_scheduler_schedule" {}
mock_resource "aws_security_group" {}
mock_resource "aws_sns_topic" {}
mock_resource "aws_sns_topic_policy" {}
mock_resource "aws_sns_topic_subscription" {}
mock_resource "aws_sqs_queue" {}
mock_resource "aws_sqs_queue_policy" {}
mock_resource "aws_vpc_security_group_egress_rule" {}

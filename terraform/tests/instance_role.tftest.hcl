# terraform test: the instance role module on its own, against the mocked AWS provider.

mock_provider "aws" {
  override_during = plan
  source          = "./tests/mocks"
}

variables {
  name             = "scheduled-gpu-model-instance"
  model_bucket_arn = "arn:aws:s3:::scheduled-gpu-model-bucket"
  activity_arn     = "arn:aws:states:eu-west-1:123456789012:activity:scheduled-gpu-model-weekly-run"
  log_group_arn    = "arn:aws:logs:eu-west-1:123456789012:log-group:/scheduled-gpu-model/instance-agent"
}

run "without_an_ecr_image_the_role_has_no_ecr_permission" {
  command = plan

  module {
    source = "./modules/instance_role"
  }

  assert {
    condition = alltrue([
      for s in data.aws_iam_policy_document.this.statement :
      alltrue([for a in s.actions : !startswith(a, "ecr:")])
    ])
    error_message = "No ECR action may be granted when the model's image is not in ECR."
  }
}

run "an_ecr_repository_gets_a_token_and_pulls_from_that_repository_only" {
  command = plan

  module {
    source = "./modules/instance_role"
  }

  variables {
    ecr_repository_arn = "arn:aws:ecr:eu-west-1:123456789012:repository/team/scorer"
  }

  assert {
    condition = one([
      for s in data.aws_iam_policy_document.this.statement : s if s.sid == "PullModelImage"
    ]).resources == tolist(["arn:aws:ecr:eu-west-1:123456789012:repository/team/scorer"])
    error_message = "Image pulls must be allowed on the model's repository only."
  }

  assert {
    condition = toset(one([
      for s in data.aws_iam_policy_document.this.statement : s if s.sid == "PullModelImage"
    ]).actions) == toset(["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"])
    error_message = "The pull statement must hold the three pull actions and nothing else (no push)."
  }

  assert {
    condition = toset(one([
      for s in data.aws_iam_policy_document.this.statement : s if s.sid == "GetEcrToken"
    ]).actions) == toset(["ecr:GetAuthorizationToken"])
    error_message = "The only registry-wide ECR action must be GetAuthorizationToken (it has no resource)."
  }
}

run "an_ecr_repository_arn_that_is_not_one_is_refused" {
  command = plan

  module {
    source = "./modules/instance_role"
  }

  variables {
    ecr_repository_arn = "arn:aws:ecr:eu-west-1:123456789012:repository/*"
  }

  expect_failures = [var.ecr_repository_arn]
}

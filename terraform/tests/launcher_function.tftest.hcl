# terraform test: the launcher function's IAM policy and environment, against mocked providers.

mock_provider "aws" {
  override_during = plan
  source          = "./tests/mocks"
}

mock_provider "archive" {
  override_during = plan
  source          = "./tests/mocks"
}

variables {
  name                          = "scheduled-gpu-model-launcher"
  project_name                  = "scheduled-gpu-model"
  source_dir                    = "../functions"
  build_dir                     = "build"
  launch_template_id            = "lt-0123456789abcdef0"
  launch_template_arn           = "arn:aws:ec2:eu-west-1:123456789012:launch-template/lt-0123456789abcdef0"
  launch_template_version       = "3"
  instance_role_arn             = "arn:aws:iam::123456789012:role/scheduled-gpu-model-instance"
  ami_ssm_parameter             = "/aws/service/deeplearning/ami/x86_64/latest/ami-id"
  activity_arn                  = "arn:aws:states:eu-west-1:123456789012:activity:scheduled-gpu-model-weekly-run-run-model"
  state_machine_name            = "scheduled-gpu-model-weekly-run"
  max_instance_lifetime_seconds = 12000
  run_records_bucket_arn        = "arn:aws:s3:::scheduled-gpu-model-bucket"
  run_records_prefix            = "runs/"
  run_records_kms_key_arn       = null
}

run "run_instances_needs_this_template_and_the_project_tag" {
  command = plan

  module {
    source = "./modules/launcher_function"
  }

  assert {
    condition = one([
      for s in data.aws_iam_policy_document.this.statement : s
      if s.sid == "RunInstancesFromThisTemplateWithProjectTag"
      ]).resources == tolist(["arn:aws:ec2:eu-west-1:123456789012:instance/*"]) && anytrue([
      for c in one([for s in data.aws_iam_policy_document.this.statement : s if s.sid == "RunInstancesFromThisTemplateWithProjectTag"]).condition :
      c.test == "ArnEquals" && c.variable == "ec2:LaunchTemplate" && c.values == tolist([var.launch_template_arn])
    ])
    error_message = "RunInstances of an instance must be conditioned on this launch template (ArnEquals ec2:LaunchTemplate)."
  }

  assert {
    condition = anytrue([
      for c in one([for s in data.aws_iam_policy_document.this.statement : s if s.sid == "RunInstancesFromThisTemplateWithProjectTag"]).condition :
      c.test == "StringEquals" && c.variable == "aws:RequestTag/Project" && c.values == tolist(["scheduled-gpu-model"])
    ])
    error_message = "RunInstances must require the Project tag in the request."
  }

  assert {
    condition = alltrue([
      for c in one([for s in data.aws_iam_policy_document.this.statement : s if s.sid == "RunInstancesOtherResourcesOfThisTemplate"]).condition :
      c.test == "ArnEquals" && c.variable == "ec2:LaunchTemplate" && c.values == tolist([var.launch_template_arn])
    ])
    error_message = "The other resources of RunInstances (volumes, subnets, ...) are allowed only through this launch template."
  }
}

run "terminate_and_tag_only_what_the_project_owns" {
  command = plan

  module {
    source = "./modules/launcher_function"
  }

  assert {
    condition = anytrue([
      for c in one([for s in data.aws_iam_policy_document.this.statement : s if s.sid == "TerminateProjectInstancesOnly"]).condition :
      c.test == "StringEquals" && c.variable == "ec2:ResourceTag/Project" && c.values == tolist(["scheduled-gpu-model"])
      ]) && one([
      for s in data.aws_iam_policy_document.this.statement : s.actions if s.sid == "TerminateProjectInstancesOnly"
    ]) == tolist(["ec2:TerminateInstances"])
    error_message = "TerminateInstances must be limited to instances tagged with this project."
  }

  assert {
    condition = anytrue([
      for c in one([for s in data.aws_iam_policy_document.this.statement : s if s.sid == "TagOnLaunchOnly"]).condition :
      c.variable == "ec2:CreateAction" && c.values == tolist(["RunInstances"])
    ])
    error_message = "CreateTags only as part of RunInstances."
  }

  assert {
    condition = alltrue([
      for s in data.aws_iam_policy_document.this.statement :
      !contains(s.actions, "ec2:TerminateInstances") || s.sid == "TerminateProjectInstancesOnly"
    ])
    error_message = "No other statement may grant TerminateInstances."
  }

  assert {
    condition = anytrue([
      for c in one([for s in data.aws_iam_policy_document.this.statement : s if s.sid == "PassInstanceRoleToEc2Only"]).condition :
      c.variable == "iam:PassedToService" && c.values == tolist(["ec2.amazonaws.com"])
    ])
    error_message = "The instance role may be passed to EC2 only."
  }
}

run "the_function_gets_its_environment_from_its_inputs" {
  command = plan

  module {
    source = "./modules/launcher_function"
  }

  assert {
    condition = aws_lambda_function.this.environment[0].variables == tomap({
      LAUNCH_TEMPLATE_ID            = "lt-0123456789abcdef0"
      LAUNCH_TEMPLATE_VERSION       = "3"
      PROJECT_NAME                  = "scheduled-gpu-model"
      STATE_MACHINE_ARN             = "arn:aws:states:eu-west-1:123456789012:stateMachine:scheduled-gpu-model-weekly-run"
      ACTIVITY_ARN                  = "arn:aws:states:eu-west-1:123456789012:activity:scheduled-gpu-model-weekly-run-run-model"
      MAX_INSTANCE_LIFETIME_SECONDS = "12000"
      POWERTOOLS_SERVICE_NAME       = "launcher"
      POWERTOOLS_METRICS_NAMESPACE  = "scheduled-gpu-model"
    })
    error_message = "The launcher's environment is built from the module's inputs."
  }

  assert {
    condition     = one([for s in data.aws_iam_policy_document.this.statement : s.resources if s.sid == "ResolveAmiParameter"]) == tolist(["arn:aws:ssm:eu-west-1::parameter/aws/service/deeplearning/ami/x86_64/latest/ami-id", "arn:aws:ssm:eu-west-1:123456789012:parameter/aws/service/deeplearning/ami/x86_64/latest/ami-id"])
    error_message = "The launcher may read the AMI's SSM parameter (public and own ARN forms) and nothing else of SSM."
  }
}

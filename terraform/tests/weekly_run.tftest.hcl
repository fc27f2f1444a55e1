# terraform test: the root module planned with the values of terraform.tfvars.example against
# mocked providers (make lint runs it offline; see terraform_tools/offline.py).

mock_provider "aws" {
  # Computed values are generated at plan time too, so assertions see values, not "unknown".
  override_during = plan
  source          = "./tests/mocks"
}

mock_provider "archive" {
  override_during = plan
  source          = "./tests/mocks"
}

# terraform.tfvars.example (tests/terraform/test_terraform_offline.py keeps them the same).
variables {
  region                        = "eu-west-1"
  vpc_id                        = "vpc-0123456789abcdef0"
  subnet_ids                    = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
  instance_types                = ["g5.xlarge", "g6.xlarge", "g4dn.xlarge"]
  schedule_expression           = "cron(0 6 ? * TUE *)"
  schedule_timezone             = "Europe/Paris"
  schedule_enabled              = true
  model_prefix                  = "models/current/"
  max_runtime_seconds           = 3600
  warm_paths                    = ["/opt/pytorch"]
  activity_timeout_seconds      = 7200
  execution_timeout_seconds     = 10800
  max_instance_lifetime_minutes = 200
  tags = {
    Owner      = "platform-team"
    CostCenter = "ml-weekly"
  }

  # Not in the example: a file that exists, since the plan only hashes the agent artifact.
  agent_artifact_path = "versions.tf"
}

run "user_data_arms_the_hard_deadline_before_anything_else" {
  command = plan

  assert {
    condition     = startswith(yamldecode(module.launch_template.user_data).bootcmd[0][2], "setsid -f sh -c 'sleep 12000;")
    error_message = "The first bootcmd must arm the hard deadline (a detached sleeper of max_instance_lifetime_minutes * 60 s) before anything else runs."
  }

  assert {
    condition     = strcontains(yamldecode(module.launch_template.user_data).bootcmd[0][2], "timeout 30 systemctl poweroff --force --force; echo o > /proc/sysrq-trigger'")
    error_message = "The deadline must still power off when systemd is wedged: systemctl's own reboot() call, then the kernel's SysRq trigger."
  }

  assert {
    condition     = !strcontains(yamldecode(module.launch_template.user_data).bootcmd[0][2], "systemd-run") && !strcontains(yamldecode(module.launch_template.user_data).bootcmd[0][2], "shutdown -h +")
    error_message = "From bootcmd, systemd-run hangs the boot and `shutdown -h +N` fails (no D-Bus yet): neither may arm the deadline."
  }

  assert {
    condition     = endswith(yamldecode(module.launch_template.user_data).bootcmd[0][2], "|| { echo \"instance-agent: could not arm the hard deadline: powering off now\"; systemctl poweroff --no-block; }")
    error_message = "An instance whose deadline could not be armed must power off at once."
  }

  assert {
    condition     = length(yamldecode(module.launch_template.user_data).runcmd) == 1 && strcontains(yamldecode(module.launch_template.user_data).runcmd[0][2], "instance-agent-bootstrap || shutdown -h now")
    error_message = "runcmd must only run the bootstrap, and shut down when it fails."
  }
}

run "user_data_writes_the_agent_configuration" {
  command = plan

  assert {
    condition = jsondecode(base64decode(one([
      for f in yamldecode(module.launch_template.user_data).write_files : f.content if f.path == "/etc/instance-agent/config.json"
    ]))).activity_arn == module.workflow.activity_arn
    error_message = "The agent must poll the workflow's activity."
  }

  assert {
    condition = jsondecode(base64decode(one([
      for f in yamldecode(module.launch_template.user_data).write_files : f.content if f.path == "/etc/instance-agent/config.json"
    ]))).heartbeat_interval_seconds == 60
    error_message = "The agent heartbeats every quarter of heartbeat_timeout_seconds (240 s -> 60 s)."
  }

  assert {
    condition = jsondecode(base64decode(one([
      for f in yamldecode(module.launch_template.user_data).write_files : f.content if f.path == "/etc/instance-agent/config.json"
    ]))).model == { bucket = output.model_bucket_name, prefix = "models/current/" }
    error_message = "The agent must read the model from the model bucket under model_prefix."
  }
}

run "state_machine_definition_nests_the_timeouts" {
  command = plan

  assert {
    condition     = jsondecode(module.workflow.definition).TimeoutSeconds == 10800
    error_message = "The execution's TimeoutSeconds is execution_timeout_seconds."
  }

  assert {
    condition     = jsondecode(module.workflow.definition).States.RunModel.TimeoutSeconds == 7200 && jsondecode(module.workflow.definition).States.RunModel.HeartbeatSeconds == 240
    error_message = "RunModel's TimeoutSeconds and HeartbeatSeconds are activity_timeout_seconds and heartbeat_timeout_seconds."
  }

  assert {
    condition     = jsondecode(module.workflow.definition).States.RunModel.Resource == module.workflow.activity_arn
    error_message = "RunModel waits on the workflow's activity."
  }

  assert {
    condition = alltrue([
      for state in ["LoadRunDefaults", "ApplyDefaults", "StartInstance", "RunModel", "StopInstance"] :
      contains(keys(jsondecode(module.workflow.definition).States), state)
    ]) && jsondecode(module.workflow.definition).StartAt == "LoadRunDefaults"
    error_message = "The definition starts at LoadRunDefaults and has the launch, run and stop states."
  }

  assert {
    condition     = jsondecode(module.workflow.definition).States.LoadRunDefaults.Result.instance_types == ["g5.xlarge", "g6.xlarge", "g4dn.xlarge"]
    error_message = "The run defaults carry instance_types in order."
  }

  assert {
    condition = alltrue([
      for name, state in jsondecode(module.workflow.definition).States :
      contains(["StartInstance", "RunModel"], name) ? state.Catch[0].Next == "StopInstance" && state.Catch[0].ErrorEquals == ["States.ALL"] : true
    ])
    error_message = "Every failure of StartInstance or RunModel must pass through StopInstance."
  }
}

run "timeouts_that_do_not_nest_are_refused" {
  command = plan

  variables {
    max_instance_lifetime_minutes = 150 # 9000 s, below the execution's 10800 s
  }

  expect_failures = [data.aws_partition.current]
}

run "a_time_zone_that_is_not_iana_is_refused" {
  command = plan

  variables {
    schedule_timezone = "Paris"
  }

  expect_failures = [var.schedule_timezone]
}

run "an_instance_type_without_instance_store_is_refused" {
  command = plan

  variables {
    instance_types = ["g5.xlarge", "t3.large"]
  }

  expect_failures = [var.instance_types]
}

run "a_project_tag_is_refused" {
  command = plan

  variables {
    tags = { Project = "other" }
  }

  expect_failures = [var.tags]
}

run "a_schedule_expression_that_is_not_cron_rate_or_at_is_refused" {
  command = plan

  variables {
    schedule_expression = "every tuesday"
  }

  expect_failures = [var.schedule_expression]
}

run "the_default_model_command_is_the_models_own_run_sh_and_warm_paths_reach_the_agent" {
  command = plan

  assert {
    condition     = length(local.agent_config.run.command) == 0 && local.agent_config.run.shell_command == null
    error_message = "By default the agent must run the published model's run.sh: no command, no shell command."
  }

  assert {
    condition     = length(local.agent_config.warm.paths) == 1 && local.agent_config.warm.paths[0] == "/opt/pytorch"
    error_message = "warm_paths must reach the agent's warm.paths."
  }
}

run "a_non_ecr_image_gets_no_ecr_permissions" {
  command = plan

  variables {
    container_image = "nvcr.io/nvidia/pytorch:25.01-py3"
  }

  assert {
    condition     = local.ecr_repository_arn == null
    error_message = "An image outside ECR must not give the instance role any ECR permission."
  }
}

run "an_ecr_image_gets_pull_permissions_on_its_repository" {
  command = plan

  variables {
    container_image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/scorer:1.4@sha256:0000000000000000000000000000000000000000000000000000000000000000"
  }

  assert {
    condition     = local.ecr_repository_arn == "arn:aws:ecr:eu-west-1:123456789012:repository/team/scorer"
    error_message = "The instance role's ECR permissions must be scoped to the image's own repository."
  }
}

run "the_root_volume_initialization_rate_reaches_the_launch_template" {
  command = plan

  variables {
    root_volume_initialization_rate = 300
  }

  assert {
    condition     = module.launch_template.root_volume_initialization_rate == 300
    error_message = "root_volume_initialization_rate must reach the launch template's root volume."
  }
}

run "a_root_volume_initialization_rate_out_of_range_is_refused" {
  command = plan

  variables {
    root_volume_initialization_rate = 50
  }

  expect_failures = [var.root_volume_initialization_rate]
}

run "a_blank_model_shell_command_is_refused" {
  command = plan

  variables {
    model_shell_command = "  "
  }

  expect_failures = [var.model_shell_command]
}

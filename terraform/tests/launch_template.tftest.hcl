# terraform test: the launch template module on its own, against the mocked AWS provider.

mock_provider "aws" {
  override_during = plan
  source          = "./tests/mocks"
}

variables {
  name                   = "scheduled-gpu-model"
  vpc_id                 = "vpc-0123456789abcdef0"
  instance_profile_arn   = "arn:aws:iam::123456789012:instance-profile/scheduled-gpu-model-instance"
  max_lifetime_minutes   = 200
  agent_config           = { region = "eu-west-1" }
  agent_artifact_s3_uri  = "s3://bucket/agent/instance-agent.tar.gz"
  agent_artifact_version = "v1"
  region                 = "eu-west-1"
  log_group_name         = "/scheduled-gpu-model/instance-agent"
  instance_tags          = { Project = "scheduled-gpu-model" }
}

run "an_os_shutdown_terminates_the_instance" {
  command = plan

  module {
    source = "./modules/launch_template"
  }

  assert {
    condition     = aws_launch_template.this.instance_initiated_shutdown_behavior == "terminate"
    error_message = "instance_initiated_shutdown_behavior must be terminate: the deadline's shutdown -h must end the billing."
  }
}

run "imdsv2_is_required_with_a_hop_for_containers" {
  command = plan

  module {
    source = "./modules/launch_template"
  }

  assert {
    condition     = aws_launch_template.this.metadata_options[0].http_tokens == "required" && aws_launch_template.this.metadata_options[0].http_endpoint == "enabled"
    error_message = "IMDSv2 tokens must be required."
  }

  assert {
    condition     = aws_launch_template.this.metadata_options[0].http_put_response_hop_limit == 2
    error_message = "The hop limit must be 2 by default: a container adds one network hop."
  }
}

run "the_root_volume_is_encrypted_and_deleted_with_the_instance" {
  command = plan

  module {
    source = "./modules/launch_template"
  }

  assert {
    condition     = aws_launch_template.this.block_device_mappings[0].ebs[0].encrypted == "true" && aws_launch_template.this.block_device_mappings[0].ebs[0].volume_type == "gp3"
    error_message = "The root volume must be an encrypted gp3 volume."
  }

  assert {
    condition     = aws_launch_template.this.block_device_mappings[0].ebs[0].delete_on_termination == "true"
    error_message = "The root volume must not outlive the instance."
  }

  assert {
    condition     = aws_launch_template.this.block_device_mappings[0].ebs[0].volume_size == 120
    error_message = "The root volume defaults to 120 GiB."
  }
}

run "instances_are_tagged_and_reachable_on_https_egress_only" {
  command = plan

  module {
    source = "./modules/launch_template"
  }

  assert {
    condition     = alltrue([for spec in aws_launch_template.this.tag_specifications : spec.tags == tomap({ Project = "scheduled-gpu-model" })]) && length(aws_launch_template.this.tag_specifications) == 2
    error_message = "Instances and volumes carry the Project tag the IAM conditions key on."
  }

  assert {
    condition     = aws_vpc_security_group_egress_rule.https.from_port == 443 && aws_vpc_security_group_egress_rule.https.to_port == 443 && aws_vpc_security_group_egress_rule.https.ip_protocol == "tcp"
    error_message = "The only rule is HTTPS egress."
  }
}

run "a_hop_limit_out_of_range_is_refused" {
  command = plan

  module {
    source = "./modules/launch_template"
  }

  variables {
    metadata_options = { http_put_response_hop_limit = 0 }
  }

  expect_failures = [var.metadata_options]
}

run "the_root_volume_is_initialized_lazily_unless_a_rate_is_set" {
  command = plan

  module {
    source = "./modules/launch_template"
  }

  assert {
    condition     = aws_launch_template.this.block_device_mappings[0].ebs[0].volume_initialization_rate == null
    error_message = "Without root_volume_initialization_rate the root volume must have no provisioned rate (it is billed)."
  }
}

run "a_root_volume_initialization_rate_is_passed_to_the_root_volume" {
  command = plan

  module {
    source = "./modules/launch_template"
  }

  variables {
    root_volume_initialization_rate = 200
  }

  assert {
    condition     = aws_launch_template.this.block_device_mappings[0].ebs[0].volume_initialization_rate == 200
    error_message = "root_volume_initialization_rate must be the root volume's volume_initialization_rate."
  }
}

run "a_root_volume_initialization_rate_above_300_is_refused" {
  command = plan

  module {
    source = "./modules/launch_template"
  }

  variables {
    root_volume_initialization_rate = 301
  }

  expect_failures = [var.root_volume_initialization_rate]
}

run "a_fractional_root_volume_initialization_rate_is_refused" {
  command = plan

  module {
    source = "./modules/launch_template"
  }

  variables {
    root_volume_initialization_rate = 150.5
  }

  expect_failures = [var.root_volume_initialization_rate]
}

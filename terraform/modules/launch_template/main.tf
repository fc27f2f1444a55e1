locals {
  user_data = templatefile("${path.module}/user_data.yaml.tftpl", {
    max_lifetime_minutes   = var.max_lifetime_minutes
    agent_config_json      = jsonencode(var.agent_config)
    agent_artifact_s3_uri  = var.agent_artifact_s3_uri
    agent_artifact_version = var.agent_artifact_version
    region                 = var.region
    log_group_name         = var.log_group_name
  })
}

resource "aws_security_group" "this" {
  name_prefix = "${var.name}-"
  description = "Scheduled GPU model instances: no ingress; HTTPS egress to AWS APIs, S3 and container registries"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = var.name })

  lifecycle {
    create_before_destroy = true
  }
}

# No ingress rule at all: nobody connects to the instance; it only calls out.
# The instance reaches S3, Step Functions, CloudWatch Logs and (optionally) a container
# registry on their public HTTPS endpoints unless the VPC has endpoints for them.
# The Amazon DNS resolver and time sync (169.254.169.123) are not filtered by security groups.
#trivy:ignore:AVD-AWS-0104
resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.this.id
  description       = "HTTPS to AWS service endpoints and container registries"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"

  tags = var.tags
}

resource "aws_launch_template" "this" {
  #checkov:skip=CKV_AWS_341:Hop limit 2 on purpose: the model may run in a container, which adds one network hop to IMDSv2 (tokens still required).
  name                                 = var.name
  description                          = "Scheduled GPU model run: every instance setting, reviewed in HCL"
  image_id                             = var.ami
  instance_type                        = var.default_instance_type
  instance_initiated_shutdown_behavior = "terminate"
  update_default_version               = true
  vpc_security_group_ids               = [aws_security_group.this.id]
  user_data                            = base64encode(local.user_data)

  iam_instance_profile {
    arn = var.instance_profile_arn
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = var.metadata_options.http_put_response_hop_limit
    instance_metadata_tags      = var.metadata_options.instance_metadata_tags
  }

  block_device_mappings {
    device_name = var.root_device_name

    ebs {
      volume_type           = "gp3"
      volume_size           = var.root_volume_size_gib
      encrypted             = true
      kms_key_id            = var.ebs_kms_key_arn
      delete_on_termination = true
      # The root volume is restored from the AMI's snapshot: null leaves its blocks to be fetched
      # lazily on first read; a rate fetches all of them from launch at that speed.
      volume_initialization_rate = var.root_volume_initialization_rate
    }
  }

  monitoring {
    enabled = true
  }

  tag_specifications {
    resource_type = "instance"
    tags          = var.instance_tags
  }

  tag_specifications {
    resource_type = "volume"
    tags          = var.instance_tags
  }

  tags = var.tags
}

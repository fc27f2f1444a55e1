data "aws_partition" "current" {}

data "aws_iam_policy_document" "assume_role" {
  statement {
    sid     = "Ec2AssumesRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.${data.aws_partition.current.dns_suffix}"]
    }
  }
}

resource "aws_iam_role" "this" {
  name                 = var.name
  description          = "Instance role of the scheduled GPU model run: read the model, write results, serve the activity."
  assume_role_policy   = data.aws_iam_policy_document.assume_role.json
  max_session_duration = 3600

  tags = var.tags
}

# Exactly what the agent does, nothing else: no SSM, no EC2 calls (it learns its own instance
# id from IMDS and ends itself with an OS shutdown), ECR only for the model's own repository.
data "aws_iam_policy_document" "this" {
  statement {
    sid       = "ListModelAndAgentPrefixes"
    actions   = ["s3:ListBucket"]
    resources = [var.model_bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = flatten([for p in var.read_prefixes : [p, "${p}*"]])
    }
  }

  statement {
    sid       = "ReadModelAndAgent"
    actions   = ["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectAttributes"]
    resources = [for p in var.read_prefixes : "${var.model_bucket_arn}/${p}*"]
  }

  statement {
    sid       = "WriteRunResults"
    actions   = ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
    resources = ["${var.model_bucket_arn}/${var.write_prefix}*"]
  }

  # A run whose success report failed retracts its manifest (and rewrites run.json as FAILED).
  statement {
    sid       = "RetractResultsManifests"
    actions   = ["s3:DeleteObject"]
    resources = ["${var.model_bucket_arn}/${var.write_prefix}*/_manifest.json"]
  }

  statement {
    sid = "ServeThisActivityOnly"
    actions = [
      "states:GetActivityTask",
      "states:SendTaskHeartbeat",
      "states:SendTaskSuccess",
      "states:SendTaskFailure",
    ]
    resources = [var.activity_arn]
  }

  statement {
    sid       = "WriteAgentLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${var.log_group_arn}:*"]
  }

  # GetAuthorizationToken has no resource: the token is for the registry; what it can pull is
  # what the next statement allows.
  dynamic "statement" {
    for_each = var.ecr_repository_arn == null ? [] : [var.ecr_repository_arn]

    content {
      sid       = "GetEcrToken"
      actions   = ["ecr:GetAuthorizationToken"]
      resources = ["*"]
    }
  }

  dynamic "statement" {
    for_each = var.ecr_repository_arn == null ? [] : [var.ecr_repository_arn]

    content {
      sid       = "PullModelImage"
      actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]

    content {
      sid       = "UseModelBucketKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]

      # Only through S3, so the key cannot be used directly from the instance.
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${data.aws_region.current.region}.${data.aws_partition.current.dns_suffix}"]
      }
    }
  }
}

data "aws_region" "current" {}

resource "aws_iam_role_policy" "this" {
  name   = "${var.name}-run"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

resource "aws_iam_instance_profile" "this" {
  name = var.name
  role = aws_iam_role.this.name

  tags = var.tags
}

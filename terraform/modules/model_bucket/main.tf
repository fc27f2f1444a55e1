data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  create_kms_key = var.create_kms_key && var.kms_key_arn == null
  kms_key_arn    = var.kms_key_arn != null ? var.kms_key_arn : (local.create_kms_key ? aws_kms_key.this[0].arn : null)

  # The three top-level prefixes of the layout in docs/design.md.
  prefixes = {
    models = "models/"
    runs   = "runs/"
    agent  = "agent/"
  }
}

resource "aws_kms_key" "this" {
  count = local.create_kms_key ? 1 : 0

  description             = "Default encryption of the model bucket ${var.bucket_name != null ? var.bucket_name : var.bucket_prefix}"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms[0].json

  tags = var.tags
}

# Key policy: the account administers and grants through IAM; principals still need an IAM
# policy naming the key (the instance role gets one), so this does not open the key to all.
data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:The standard key policy: it delegates the key to the account's IAM policies; "*" in a key policy means this key only.
  #checkov:skip=CKV_AWS_111:The standard key policy: it delegates the key to the account's IAM policies; "*" in a key policy means this key only.
  #checkov:skip=CKV_AWS_356:The standard key policy: it delegates the key to the account's IAM policies; "*" in a key policy means this key only.
  count = local.create_kms_key ? 1 : 0

  statement {
    sid       = "AccountAdministersThroughIam"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}

resource "aws_kms_alias" "this" {
  count = local.create_kms_key ? 1 : 0

  name_prefix   = "alias/${trimsuffix(var.bucket_prefix, "-")}-"
  target_key_id = aws_kms_key.this[0].key_id
}

# Access logging needs a second bucket; CloudTrail data events audit this private, TLS-only bucket.
#trivy:ignore:AVD-AWS-0089
resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_18:Access logging needs a second bucket; CloudTrail data events are the audit trail for this private, TLS-only bucket.
  #checkov:skip=CKV_AWS_144:Cross-region replication is out of scope: models are re-publishable and results are re-computable.
  #checkov:skip=CKV2_AWS_62:No consumer of S3 event notifications: the workflow learns about results from the activity output.
  #checkov:skip=CKV_AWS_145:SSE-S3 is the default on purpose (no KMS cost or key policy to manage); set kms_key_arn or create_kms_key for SSE-KMS.
  bucket        = var.bucket_name
  bucket_prefix = var.bucket_name == null ? var.bucket_prefix : null
  force_destroy = var.force_destroy

  tags = var.tags
}

resource "aws_s3_bucket_ownership_controls" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket = aws_s3_bucket.this.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "this" {
  bucket = aws_s3_bucket.this.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = local.kms_key_arn != null ? "aws:kms" : "AES256"
      kms_master_key_id = local.kms_key_arn
    }
    # S3 Bucket Keys cut KMS requests (and their cost) for the many ranged GETs of a model copy.
    bucket_key_enabled = local.kms_key_arn != null
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  #checkov:skip=CKV_AWS_300:False positive: checkov drops the static rules when the dynamic runs/ rule renders empty; the abort-incomplete-multipart-uploads rule below sets 7 days.
  bucket = aws_s3_bucket.this.id

  rule {
    id     = "expire-noncurrent-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }
  }

  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  dynamic "rule" {
    for_each = var.run_results_expiration_days == null ? [] : [var.run_results_expiration_days]

    content {
      id     = "expire-run-results"
      status = "Enabled"

      filter {
        prefix = local.prefixes.runs
      }

      expiration {
        days = rule.value
      }
    }
  }

  # Versioning must be on before noncurrent-version rules mean anything.
  depends_on = [aws_s3_bucket_versioning.this]
}

data "aws_iam_policy_document" "bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.this.arn, "${aws_s3_bucket.this.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "DenyOutdatedTls"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.this.arn, "${aws_s3_bucket.this.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "NumericLessThan"
      variable = "s3:TlsVersion"
      values   = ["1.2"]
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  bucket = aws_s3_bucket.this.id
  policy = data.aws_iam_policy_document.bucket.json

  # A policy put before the public access block can race it; order them.
  depends_on = [aws_s3_bucket_public_access_block.this]
}

# Zero-byte "folder" markers so the layout is visible in the console before the first run.
resource "aws_s3_object" "prefix" {
  for_each = local.prefixes

  bucket       = aws_s3_bucket.this.id
  key          = each.value
  content      = ""
  content_type = "application/x-directory"

  tags = var.tags

  depends_on = [aws_s3_bucket_server_side_encryption_configuration.this]
}

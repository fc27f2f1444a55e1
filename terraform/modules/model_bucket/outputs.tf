output "bucket_name" {
  description = "Name of the model bucket."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "ARN of the model bucket."
  value       = aws_s3_bucket.this.arn
}

output "bucket_regional_domain_name" {
  description = "Regional domain name of the model bucket."
  value       = aws_s3_bucket.this.bucket_regional_domain_name
}

output "kms_key_arn" {
  description = "ARN of the KMS key encrypting the bucket (created or given); null for SSE-S3."
  value       = local.kms_key_arn
}

output "prefixes" {
  description = "The bucket's top-level prefixes: models/, runs/ and agent/."
  value       = local.prefixes
}

"""S3 (io.kestra.plugin.aws.s3.*): objects put, fetched, listed, copied and deleted with boto3; a polling trigger."""

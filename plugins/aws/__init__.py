"""The AWS family (io.kestra.plugin.aws.*): S3 tasks and trigger with boto3, and AwsCLI running the `aws` command.

boto3 and awscli come with the `gitsync[aws]` extra; the types are known without them (validate, schema)."""

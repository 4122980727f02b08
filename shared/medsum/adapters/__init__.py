"""AWS adapters: the only modules that import boto3. Each turns ``ClientError`` codes into domain
exceptions and takes an optional injected client so tests can pass a Stubber-wrapped one."""

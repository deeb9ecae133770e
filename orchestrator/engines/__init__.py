"""Engines: where a script runs. local (processes + SQLite) and ecs (Fargate + CloudWatch + DynamoDB)."""

"""Where moto 5.2 falls short of what AWS *does* (as opposed to what AWS *forbids*, which
aws_rules.py adds): each patch makes the moto server behave as CloudFormation or the service does,
so a stack deployed by `mycli init` in the tests looks like one deployed in an account.

Every patch is on moto's side (the simulated AWS), never on mycli's code, and is applied once in
the process that hosts the moto server (tests/support/aws.py, moto_endpoint).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

_APPLIED = False


def fill_moto_gaps() -> None:
    global _APPLIED
    if _APPLIED:
        return
    _APPLIED = True
    _route_tables_can_be_deleted()
    _enis_without_dns_names()
    _lambda_functions_as_cloudformation_makes_them()
    _task_definitions_keep_every_property()
    _clusters_keep_their_capacity_providers()
    _generated_role_names_fit_iam()
    _subnets_honour_availability_zone_ids()
    _secrets_and_stages_are_created()
    _bucket_policies_are_created()
    _failed_creates_roll_back()
    _failed_deletes_end_delete_failed()
    from moto.cloudformation import parsing

    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()  # the new CloudFormationModel subclasses must be seen


def _route_tables_can_be_deleted() -> None:
    """moto's CloudFormation cannot delete an AWS::EC2::RouteTable, so DeleteStack of any stack
    with a VPC fails with DependencyViolation: give the model the delete CloudFormation performs."""
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.route_tables import RouteTable

    def delete(self, account_id: str, region_name: str) -> None:
        backend = ec2_backends[account_id][region_name]
        self._associations.clear()
        backend.route_tables.pop(self.id, None)

    RouteTable.delete = delete


def _enis_without_dns_names() -> None:
    """RunTask of an awsvpc task crashes when the VPC's DNS hostnames flag did not reach moto
    (NetworkInterface.private_dns_name is then never set): default it to None."""
    from moto.ec2.models.elastic_network_interfaces import NetworkInterface

    if not hasattr(NetworkInterface, "private_dns_name"):
        NetworkInterface.private_dns_name = None


def _lambda_functions_as_cloudformation_makes_them() -> None:
    """UpdateStack crashes on a function with inline `Code.ZipFile` (moto base64-decodes the
    source text): CloudFormation leaves code it did not see change alone, so do that; and moto's
    create drops Architectures (every function would be x86_64)."""
    from moto.awslambda.models import LambdaFunction

    original = LambdaFunction.update_from_cloudformation_json

    def update(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):
        properties = cloudformation_json["Properties"]
        if "ZipFile" in properties.get("Code", {}):
            original_resource.update_configuration(properties)
            return original_resource
        return original(original_resource=original_resource, new_resource_name=new_resource_name,
                        cloudformation_json=cloudformation_json, account_id=account_id, region_name=region_name)

    LambdaFunction.update_from_cloudformation_json = classmethod(update)

    original_create = LambdaFunction.create_from_cloudformation_json

    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        function = original_create.__func__(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        if cloudformation_json["Properties"].get("Architectures"):
            function.architectures = cloudformation_json["Properties"]["Architectures"]
        return function

    LambdaFunction.create_from_cloudformation_json = classmethod(create)


_TASK_PROPERTIES = {  # AWS::ECS::TaskDefinition property → register_task_definition argument
    "NetworkMode": "network_mode", "RequiresCompatibilities": "requires_compatibilities", "Cpu": "cpu",
    "Memory": "memory", "TaskRoleArn": "task_role_arn", "ExecutionRoleArn": "execution_role_arn",
    "RuntimePlatform": "runtime_platform", "PidMode": "pid_mode", "IpcMode": "ipc_mode",
}


def _task_definitions_keep_every_property() -> None:
    """moto's CloudFormation registers a task definition with its family, containers, volumes and
    memory only; CloudFormation passes every property (network mode, cpu, roles, platform), and
    without them the base definition would hide exactly the settings aws_rules.py checks."""
    from moto.ecs.models import TaskDefinition, ecs_backends
    from moto.core.utils import pascal_to_camelcase, remap_nested_keys

    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        properties = cloudformation_json["Properties"]
        extra = {arg: properties[prop] for prop, arg in _TASK_PROPERTIES.items() if prop in properties}
        if "runtime_platform" in extra:
            extra["runtime_platform"] = remap_nested_keys(extra["runtime_platform"], pascal_to_camelcase)
        for key in ("cpu", "memory"):
            if key in extra:
                extra[key] = str(extra[key])
        return ecs_backends[account_id][region_name].register_task_definition(
            family=properties.get("Family", resource_name),
            container_definitions=remap_nested_keys(properties.get("ContainerDefinitions", []), pascal_to_camelcase),
            volumes=remap_nested_keys(properties.get("Volumes", []), pascal_to_camelcase),
            tags=[{"key": t["Key"], "value": t["Value"]} for t in properties.get("Tags", [])] or None,
            **extra,
        )

    TaskDefinition.create_from_cloudformation_json = classmethod(create)


def _clusters_keep_their_capacity_providers() -> None:
    """moto's CloudFormation creates a cluster from its name only; CloudFormation also attaches
    its CapacityProviders and default strategy (FARGATE_SPOT by default here)."""
    from moto.ecs.models import Cluster

    original = Cluster.create_from_cloudformation_json

    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        cluster = original.__func__(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        properties = cloudformation_json["Properties"]
        cluster.capacity_providers = properties.get("CapacityProviders") or cluster.capacity_providers
        strategy = properties.get("DefaultCapacityProviderStrategy")
        if strategy:
            cluster.default_capacity_provider_strategy = [{k[:1].lower() + k[1:]: v for k, v in s.items()} for s in strategy]
        return cluster

    Cluster.create_from_cloudformation_json = classmethod(create)


def _generated_role_names_fit_iam() -> None:
    """A role without RoleName gets a generated name: CloudFormation shortens the stack name and
    logical ID so that `{stack}-{logical}-{suffix}` fits IAM's 64 characters; moto does not."""
    from moto.cloudformation import parsing
    from moto.cloudformation.utils import random_suffix

    original = parsing.generate_resource_name

    def generate(resource_type: str, stack_name: str, logical_id: str) -> str:
        if resource_type != "AWS::IAM::Role":
            return original(resource_type, stack_name, logical_id)
        suffix = random_suffix()
        return f"{f'{stack_name}-{logical_id}'[: 64 - len(suffix) - 1].rstrip('-')}-{suffix}"

    parsing.generate_resource_name = generate


def _subnets_honour_availability_zone_ids() -> None:
    """moto's CloudFormation reads a subnet's AvailabilityZone only; AvailabilityZoneId (how the
    template picks zones that Fargate supports) is dropped, and the subnet lands in us-east-1a."""
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.subnets import Subnet

    original = Subnet.create_from_cloudformation_json

    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        properties = cloudformation_json["Properties"]
        if not properties.get("AvailabilityZoneId"):
            return original.__func__(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        subnet = ec2_backends[account_id][region_name].create_subnet(
            vpc_id=properties["VpcId"], cidr_block=properties["CidrBlock"],
            availability_zone_id=properties["AvailabilityZoneId"],
        )
        for tag in properties.get("Tags", []):
            subnet.add_tag(tag["Key"], tag["Value"])
        return subnet

    Subnet.create_from_cloudformation_json = classmethod(create)


_MODELS: list[type] = []  # the CloudFormationModel subclasses added here, kept alive


def _named_model(cfn_type: str, moto_module: str, name_type: str,
                 create: Callable[[dict, str, str], str]) -> None:
    """Teach moto's CloudFormation a resource type it skips: `create(properties, account,
    region)` makes it in the service's backend and returns its physical ID (a name). moto finds
    models by subclassing CloudFormationModel and files them by their module's service."""
    from moto.core.common_models import CloudFormationModel

    class Named(CloudFormationModel):
        def __init__(self, name: str):
            self.name = name

        @property
        def physical_resource_id(self) -> str:
            return self.name

        @staticmethod
        def cloudformation_name_type() -> str:
            return name_type

        @staticmethod
        def cloudformation_type() -> str:
            return cfn_type

        @classmethod
        def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
            return cls(create(cloudformation_json["Properties"], account_id, region_name))

    Named.__module__ = moto_module
    _MODELS.append(Named)


def _secrets_and_stages_are_created() -> None:
    """moto's CloudFormation skips AWS::SecretsManager::Secret and AWS::ApiGateway::Stage (with a
    warning, still CREATE_COMPLETE): create them as CloudFormation does, so `!Ref GitCredentials`
    is the secret's ARN and the API has its `prod` stage with the template's method settings."""
    from moto.core.common_models import CloudFormationModel

    class Secret(CloudFormationModel):
        __module__ = "moto.secretsmanager.models"  # moto's model registry files models by service

        def __init__(self, arn: str, region: str, account_id: str):
            self.arn, self.region, self.account_id = arn, region, account_id

        @property
        def physical_resource_id(self) -> str:
            return self.arn

        @staticmethod
        def cloudformation_name_type() -> str:
            return "Name"

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::SecretsManager::Secret"

        @classmethod
        def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
            from moto.secretsmanager.models import secretsmanager_backends

            properties = cloudformation_json["Properties"]
            answer = secretsmanager_backends[account_id][region_name].create_secret(
                name=properties.get("Name", resource_name), secret_string=properties.get("SecretString", ""),
                secret_binary=None, description=properties.get("Description"), tags=None, kms_key_id=None,
                client_request_token=None, replica_regions=[], force_overwrite=False,
            )
            return cls(json.loads(answer)["ARN"], region_name, account_id)

        @classmethod
        def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,
                                            account_id, region_name):
            from moto.secretsmanager.models import secretsmanager_backends

            secretsmanager_backends[account_id][region_name].put_secret_value(
                secret_id=original_resource.arn, secret_string=cloudformation_json["Properties"].get("SecretString", ""),
                secret_binary=None, client_request_token=None, version_stages=["AWSCURRENT"],
            )
            return original_resource

        def delete(self, account_id: str, region_name: str) -> None:
            from moto.secretsmanager.models import secretsmanager_backends

            secretsmanager_backends[account_id][region_name].delete_secret(
                secret_id=self.arn, recovery_window_in_days=None, force_delete_without_recovery=True)

    def create_stage(properties: dict, account_id: str, region_name: str) -> str:
        from moto.apigateway.models import apigateway_backends

        deployment = properties["DeploymentId"]  # moto's Ref of a Deployment is the object itself
        stage = apigateway_backends[account_id][region_name].create_stage(
            function_id=properties["RestApiId"], stage_name=properties["StageName"],
            deploymentId=getattr(deployment, "id", deployment), description=properties.get("Description", ""),
        )
        stage.method_settings = {
            f"{s.get('ResourcePath', '/*').lstrip('/')}/{s.get('HttpMethod', '*')}": _camel_keys(s)
            for s in properties.get("MethodSettings", [])
        }
        return properties["StageName"]

    _MODELS.append(Secret)  # keep it alive: moto finds models by subclassing
    _named_model("AWS::ApiGateway::Stage", "moto.apigateway.models", "StageName", create_stage)


def _bucket_policies_are_created() -> None:
    """moto's CloudFormation skips AWS::S3::BucketPolicy (with a warning), and creates a bucket
    without its LifecycleConfiguration and PublicAccessBlockConfiguration: apply them as
    CloudFormation does, so the deployed bucket holds the template's TLS-only statement, its
    expiry rules and its public access block."""
    from moto.s3.models import FakeBucket, s3_backends
    from moto.utilities.utils import get_partition

    original_create = FakeBucket.create_from_cloudformation_json

    def create_bucket(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        bucket = original_create.__func__(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        properties = cloudformation_json.get("Properties", {})
        backend = s3_backends[account_id][get_partition(region_name)]
        rules = (properties.get("LifecycleConfiguration") or {}).get("Rules") or []
        if rules:
            backend.put_bucket_lifecycle(bucket.name, [{
                "ID": r.get("Id", ""), "Status": r["Status"], "Prefix": r.get("Prefix", ""),
                **({"Expiration": {"Days": int(r["ExpirationInDays"])}} if "ExpirationInDays" in r else {}),
                **({"AbortIncompleteMultipartUpload": {"DaysAfterInitiation": int(
                    r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])}} if "AbortIncompleteMultipartUpload" in r else {}),
            } for r in rules])
        block = properties.get("PublicAccessBlockConfiguration")
        if block:
            backend.put_public_access_block(bucket.name, {k: str(v).lower() for k, v in block.items()})
        return bucket

    FakeBucket.create_from_cloudformation_json = classmethod(create_bucket)

    def create_policy(properties: dict, account_id: str, region_name: str) -> str:
        bucket = getattr(properties["Bucket"], "name", properties["Bucket"])
        s3_backends[account_id][get_partition(region_name)].put_bucket_policy(
            bucket, json.dumps(properties["PolicyDocument"]).encode())
        return bucket

    _named_model("AWS::S3::BucketPolicy", "moto.s3.models", "", create_policy)

    # moto evaluates a bucket policy's statements without their conditions, so the template's
    # "deny unless TLS" would deny every request. The moto server stands in for S3's HTTPS
    # endpoints (clients reach it over plain HTTP only because it runs on this machine): evaluate
    # aws:SecureTransport as true, and leave out a statement with any condition it cannot judge.
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.s3.models import FakeBucket

    def get_permission(self, action: str, resource: str):
        if self.policy is None:
            return PermissionResult.NEUTRAL
        document = json.loads(self.policy.decode())
        statements = document.get("Statement", [])
        statements = [s for s in (statements if isinstance(statements, list) else [statements]) if _holds(s.get("Condition"))]
        return IAMPolicy(json.dumps({**document, "Statement": statements})).is_action_permitted(action, resource)

    FakeBucket.get_permission = get_permission


def _holds(condition: dict | None) -> bool:
    """Whether a statement's condition holds for a request over TLS (the only key judged)."""
    if not condition:
        return True
    if set(condition) != {"Bool"} or set(condition["Bool"]) != {"aws:SecureTransport"}:
        return False
    return str(condition["Bool"]["aws:SecureTransport"]).lower() == "true"


def _camel_keys(setting: dict[str, Any]) -> dict[str, Any]:
    return {k[:1].lower() + k[1:]: v for k, v in setting.items() if k not in ("ResourcePath", "HttpMethod")}


def _failed_creates_roll_back() -> None:
    """When a resource cannot be created (aws_rules.py refuses a name AWS would refuse), CreateStack
    still succeeds and the stack rolls back to ROLLBACK_COMPLETE with the reason in its events;
    moto lets the error escape CreateStack and leaves the stack CREATE_IN_PROGRESS."""
    from moto.cloudformation.models import Stack

    original = Stack.create_resources

    def create_resources(self) -> None:
        try:
            original(self)
        except Exception as exc:  # any resource CloudFormation could not create
            reason = getattr(exc, "message", None) or str(exc)
            self._add_stack_event("CREATE_FAILED", resource_status_reason=f"The following resource(s) failed to create: {reason}")
            self._add_stack_event("ROLLBACK_IN_PROGRESS", resource_status_reason="Rollback requested by user.")
            try:
                self.resource_map.delete()
            except Exception:  # what is left over is what a real rollback would have removed
                pass
            self._add_stack_event("ROLLBACK_COMPLETE")
            self.status = "ROLLBACK_COMPLETE"
            self.output_map = _NoOutputs()  # moto's lazy map would try to create the resources again

    class _NoOutputs(dict):
        exports: list = []

    Stack.create_resources = create_resources


def _failed_deletes_end_delete_failed() -> None:
    """When CloudFormation cannot delete a resource (aws_rules.py makes DeleteCluster refuse while
    tasks are active), the stack ends DELETE_FAILED with the reason, and stays listed; moto lets
    the error escape DeleteStack and drops the stack."""
    from moto.cloudformation.models import CloudFormationBackend, Stack

    original_delete = Stack.delete

    def delete(self) -> None:
        try:
            original_delete(self)
        except Exception as exc:  # any resource CloudFormation could not delete
            reason = getattr(exc, "message", None) or str(exc)
            self._add_stack_event("DELETE_FAILED", resource_status_reason=f"The following resource(s) failed to delete: {reason}")
            self.status = "DELETE_FAILED"

    original_delete_stack = CloudFormationBackend.delete_stack

    def delete_stack(self, name_or_stack_id: str) -> None:
        before = {stack.stack_id: stack for stack in self.stacks.values()}
        original_delete_stack(self, name_or_stack_id)
        for stack_id, stack in before.items():
            if stack.status == "DELETE_FAILED" and stack_id not in self.stacks:
                self.stacks[stack_id] = stack
                self.deleted_stacks.pop(stack_id, None)

    Stack.delete = delete
    CloudFormationBackend.delete_stack = delete_stack

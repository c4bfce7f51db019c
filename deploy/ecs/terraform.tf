# The task definition of deploy/ecs/task-definition.json as Terraform (hashicorp/aws provider):
# app (ko-built, no shell, no healthCheck), the healthagg sidecar that owns the task's health,
# and a proxy that starts only once the sidecar says the app is ready. See deploy/README.md.

variable "app_image" {
  description = "The app's image, as built by `ko build` (no shell, no curl)"
  type        = string
  default     = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:v1.2.3"
}

variable "healthagg_image" {
  description = "The healthagg image (deploy/Dockerfile)"
  type        = string
  default     = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/healthagg:0.1.0"
}

variable "cpu_architecture" {
  description = "X86_64, or ARM64 for AWS Graviton (deploy/Dockerfile builds the healthagg image per TARGETARCH)"
  type        = string
  default     = "X86_64"
}

variable "proxy_image" {
  type    = string
  default = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/proxy:1.0.0"
}

variable "execution_role_arn" {
  description = "Task execution role (pulls images, writes the awslogs streams)"
  type        = string
  default     = "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"
}

data "aws_region" "current" {}

resource "aws_cloudwatch_log_group" "app" {
  name              = "/ecs/app-with-healthagg"
  retention_in_days = 14
}

locals {
  healthagg_config = {
    listen = "127.0.0.1:8099"
    defaults = {
      interval          = "5s"
      timeout           = "2s"
      failure_threshold = 3
      success_threshold = 1
      start_period      = "30s"
    }
    checks = [
      # "live": what the ECS health check (probe --group live) judges - the app itself.
      { name = "app", url = "http://127.0.0.1:8080/healthz", container = "app", groups = ["live"] },
      # Only in /readyz (a load balancer's health check): a hung proxy takes the task out of
      # rotation but never gets it replaced. It is not in "live", so the proxy waiting for
      # healthagg HEALTHY cannot deadlock.
      { name = "proxy", url = "tcp://127.0.0.1:80" },
    ]
  }

  awslogs = {
    "awslogs-group"  = aws_cloudwatch_log_group.app.name
    "awslogs-region" = data.aws_region.current.name
  }
}

resource "aws_ecs_task_definition" "app" {
  family                   = "app-with-healthagg"
  network_mode             = "awsvpc"
  requires_compatibilities = ["FARGATE"]
  cpu                      = "512"
  memory                   = "1024"
  execution_role_arn       = var.execution_role_arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  container_definitions = jsonencode([
    {
      name         = "app"
      image        = var.app_image
      essential    = true
      portMappings = [{ containerPort = 8080, protocol = "tcp" }]
      # START, never HEALTHY: the sidecar turns healthy only once the app answers.
      dependsOn = [{ containerName = "healthagg", condition = "START" }]
      logConfiguration = {
        logDriver = "awslogs"
        options   = merge(local.awslogs, { "awslogs-stream-prefix" = "app" })
      }
    },
    {
      name                   = "healthagg"
      image                  = var.healthagg_image
      essential              = true
      readonlyRootFilesystem = true
      user                   = "65532:65532"
      environment = [
        { name = "HEALTHAGG_CONFIG", value = jsonencode(local.healthagg_config) },
      ]
      # Exec form: the image has no shell. The only healthCheck of the task, so its verdict is
      # the task's; it judges the "live" group only (the app), see the checks above.
      healthCheck = {
        command     = ["CMD", "/healthagg", "probe", "--group", "live"]
        interval    = 10
        timeout     = 3
        retries     = 3
        startPeriod = 60
      }
      logConfiguration = {
        logDriver = "awslogs"
        options   = merge(local.awslogs, { "awslogs-stream-prefix" = "healthagg" })
      }
    },
    {
      name         = "proxy"
      image        = var.proxy_image
      essential    = true
      portMappings = [{ containerPort = 80, protocol = "tcp" }]
      dependsOn    = [{ containerName = "healthagg", condition = "HEALTHY" }]
      logConfiguration = {
        logDriver = "awslogs"
        options   = merge(local.awslogs, { "awslogs-stream-prefix" = "proxy" })
      }
    },
  ])
}

# terraform test: the workflow module's schedule and state machine, against the mocked AWS.

mock_provider "aws" {
  override_during = plan
  source          = "./tests/mocks"
}

variables {
  name                  = "scheduled-gpu-model-weekly-run"
  launcher_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:scheduled-gpu-model-launcher"
  model_bucket_name     = "scheduled-gpu-model-bucket"
  run_defaults = {
    instance_types      = ["g5.xlarge"]
    subnet_ids          = ["subnet-0123456789abcdef0"]
    model_prefix        = "models/current/"
    max_runtime_seconds = 3600
    parameters          = {}
  }
  heartbeat_timeout_seconds = 240
  activity_timeout_seconds  = 7200
  execution_timeout_seconds = 10800
  schedule_expression       = "cron(0 6 ? * TUE *)"
  schedule_timezone         = "Europe/Paris"
}

run "the_schedule_starts_a_run_every_tuesday_in_its_time_zone" {
  command = plan

  module {
    source = "./modules/workflow"
  }

  assert {
    condition     = aws_scheduler_schedule.this.schedule_expression == "cron(0 6 ? * TUE *)" && aws_scheduler_schedule.this.schedule_expression_timezone == "Europe/Paris"
    error_message = "The schedule's expression and time zone are the variables'."
  }

  assert {
    condition     = aws_scheduler_schedule.this.state == "ENABLED" && aws_scheduler_schedule.this.flexible_time_window[0].mode == "OFF"
    error_message = "The schedule is enabled and fires on time."
  }

  assert {
    condition     = aws_scheduler_schedule.this.target[0].input == "{}" && aws_scheduler_schedule.this.target[0].arn == aws_sfn_state_machine.this.arn
    error_message = "The schedule starts this state machine with {} (every default)."
  }

  assert {
    condition     = aws_scheduler_schedule.this.target[0].dead_letter_config[0].arn == aws_sqs_queue.schedule_dlq.arn
    error_message = "A run the scheduler could not start lands in the dead-letter queue."
  }
}

run "a_disabled_schedule_is_kept_but_does_not_fire" {
  command = plan

  module {
    source = "./modules/workflow"
  }

  variables {
    schedule_enabled = false
  }

  assert {
    condition     = aws_scheduler_schedule.this.state == "DISABLED"
    error_message = "schedule_enabled = false disables the schedule."
  }
}

run "the_state_machine_is_standard_logged_and_traced" {
  command = plan

  module {
    source = "./modules/workflow"
  }

  assert {
    condition     = aws_sfn_state_machine.this.type == "STANDARD" && aws_sfn_state_machine.this.tracing_configuration[0].enabled
    error_message = "A standard, traced state machine (express ones cannot wait hours on an activity)."
  }

  assert {
    condition     = aws_sfn_state_machine.this.logging_configuration[0].level == "ALL" && aws_sfn_state_machine.this.logging_configuration[0].log_destination == "${aws_cloudwatch_log_group.this.arn}:*"
    error_message = "Every execution event is logged to the module's log group."
  }
}

run "a_retry_count_beyond_what_scheduler_accepts_is_refused" {
  command = plan

  module {
    source = "./modules/workflow"
  }

  variables {
    schedule_retry = { maximum_retry_attempts = 186, maximum_event_age_in_seconds = 3600 }
  }

  expect_failures = [var.schedule_retry]
}

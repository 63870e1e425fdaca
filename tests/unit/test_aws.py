from app import aws


def test_clients_take_the_region_from_aws_region_alone(monkeypatch):
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    client = aws.client("sqs")
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.config.retries["mode"] == "adaptive"


def test_aws_region_wins_over_the_botocore_default(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    assert aws.client("dynamodb").meta.region_name == "eu-central-1"
    monkeypatch.delenv("AWS_REGION")
    assert aws.client("dynamodb").meta.region_name == "us-west-2"

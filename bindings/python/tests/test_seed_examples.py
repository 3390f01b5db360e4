"""The seed's own examples ("Data Protection Guide"), run against
atom_protect as a drop-in for ``core.secrets_encryption`` and the seed's
``store_user_credential`` / ``get_user_credential``."""

import secrets

import pytest

from atom_protect import CredentialStore, SecretsEncryption


class SlackClient:
    """Stands in for the Slack SDK client of the seed's example."""

    def __init__(self, token: str):
        self.token = token


def test_encrypting_and_decrypting_data(monkeypatch):
    # export ENCRYPTION_KEY=$(python -c "import secrets; print(secrets.token_urlsafe(32))")
    monkeypatch.setenv("ENCRYPTION_KEY", secrets.token_urlsafe(32))
    secrets_encryption = SecretsEncryption()

    # Encrypt API token
    access_token = "xoxb-your-slack-token"
    encrypted_token = secrets_encryption.encrypt(access_token)
    # Result: "gAAAAABh..."
    assert encrypted_token.startswith("gAAAAA")
    assert access_token not in encrypted_token

    # Decrypt token
    assert secrets_encryption.decrypt(encrypted_token) == "xoxb-your-slack-token"


def test_store_and_retrieve_user_credential():
    store = CredentialStore()

    # Store User Credential
    store.store_user_credential("user_123", "slack", "xoxb-your-slack-token")

    # Retrieve User Credential
    access_token = store.get_user_credential("user_123", "slack")
    assert access_token == "xoxb-your-slack-token"


def test_slack_service_reads_its_users_credential():
    store = CredentialStore()
    get_user_credential = store.get_user_credential  # the seed's function
    store.store_user_credential("user_123", "slack", "xoxb-user-123-token")
    store.store_user_credential("user_456", "slack", "xoxb-user-456-token")

    class SlackService:
        """Slack API service with encrypted credentials"""

        def __init__(self, user_id: str):
            self.user_id = user_id
            self.access_token = get_user_credential(user_id, "slack")
            self.client = SlackClient(token=self.access_token)

    assert SlackService("user_123").client.token == "xoxb-user-123-token"
    assert SlackService("user_456").client.token == "xoxb-user-456-token"


def test_a_missing_credential_is_the_seeds_value_error():
    store = CredentialStore()
    store.store_user_credential("user_123", "github", "gho_token")

    try:
        store.get_user_credential("user_123", "slack")
    except ValueError as e:
        message = str(e)
    else:
        pytest.fail("get_user_credential returned for a credential never stored")

    assert message == "Credential not found for slack"


def test_a_token_that_does_not_decrypt_is_the_seeds_value_error(monkeypatch):
    token_of_another_deployment = SecretsEncryption().encrypt("xoxb-your-slack-token")
    monkeypatch.setenv("ENCRYPTION_KEY", secrets.token_urlsafe(32))
    secrets_encryption = SecretsEncryption()
    damaged = secrets_encryption.encrypt("xoxb-your-slack-token")[:-6] + "AAAAAA"

    for encrypted in (token_of_another_deployment, damaged, "not a token at all"):
        try:
            secrets_encryption.decrypt(encrypted)
        except ValueError as e:
            assert str(e) == "Invalid encrypted data"
        else:
            pytest.fail(f"decrypt accepted {encrypted!r}")

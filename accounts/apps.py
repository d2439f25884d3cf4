from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import accounts.schema
        import accounts.tasks  # noqa: F401 - registers beat entries
        from accounts.roles import sync_role_groups

        # Every app's post_migrate has run by the time the last app's fires; re-syncing per app
        # is cheap and keeps new permissions in the groups after each migrate.
        post_migrate.connect(sync_role_groups, dispatch_uid="accounts.sync_role_groups")

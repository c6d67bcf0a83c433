from django.apps import AppConfig


class HandoffConfig(AppConfig):
    name = "handoff"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Merges and erasures happen in the contacts app; what this app holds
        # about a person follows them.
        from contacts import selectors as contact_selectors
        from contacts import services as contact_services

        from . import selectors, services

        # A reader's timeline leaves out the handoffs it may not know of.
        hidden = selectors.handoff_subjects_hidden_from
        if hidden not in contact_selectors.TIMELINE_HIDDEN_SUBJECT_HOOKS:
            contact_selectors.TIMELINE_HIDDEN_SUBJECT_HOOKS.append(hidden)

        if services.contact_references_move not in contact_services.CONTACT_MERGE_HOOKS:
            contact_services.CONTACT_MERGE_HOOKS.append(services.contact_references_move)
        if services.contact_personal_data_erase not in contact_services.CONTACT_ERASURE_HOOKS:
            contact_services.CONTACT_ERASURE_HOOKS.append(services.contact_personal_data_erase)

from django.http import HttpRequest, HttpResponse


def _todo(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    return HttpResponse(status=404)


contact_list = contact_new = contact_detail = consent_new = disclosure_new = _todo
contact_merge = contact_erase = contact_export = disclosure_withdraw = _todo

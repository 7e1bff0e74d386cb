from django.conf import settings


def company(request):
    return {"company_name": settings.DISPATCH_COMPANY_NAME}

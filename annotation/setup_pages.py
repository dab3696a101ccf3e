"""The manager's campaign set-up page: settings, classes, members, regions, assignments."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from annotation.forms import (
    CampaignForm,
    ExcludeForm,
    GuidelineImageForm,
    InviteForm,
    LabelClassForm,
    ReassignForm,
    SeedForm,
)
from annotation.models import (
    Assignment,
    AssignmentStatus,
    GuidelineImage,
    LabelClass,
    Membership,
    Region,
)
from annotation.selectors import access_project, access_project_as_manager
from annotation.services import assignments as assignment_services
from annotation.services import members as member_services
from annotation.services import regions as region_services
from annotation.services.label_classes import LabelClassLimit, label_classes_reserve


@login_required
def campaign_setup(request: HttpRequest, project_id: int) -> HttpResponse:
    """Settings form (GET shows it, POST saves it) and the lists the manager acts on."""
    project = access_project_as_manager(request.user, project_id)
    form = CampaignForm(request.POST or None, instance=project)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Campaign settings saved.")
        return redirect("campaign-setup", project_id=project.pk)
    assignments = (
        Assignment.objects.filter(region__project=project, status=AssignmentStatus.ACTIVE)
        .select_related("annotator", "region")
        .order_by("expires_at")[:200]
    )
    context = {
        "project": project,
        "form": form,
        "class_form": LabelClassForm(),
        "invite_form": InviteForm(),
        "image_form": GuidelineImageForm(),
        "guideline_images": GuidelineImage.objects.filter(project=project),
        "seed_form": SeedForm(),
        "classes": LabelClass.objects.filter(project=project),
        "members": Membership.objects.filter(project=project).select_related("user"),
        "region_counts": {
            origin: Region.objects.filter(project=project, origin=origin).count()
            for origin in ("seeded", "manual", "gold", "proposed")
        },
        "assignments": assignments,
    }
    return render(request, "annotation/setup.html", context)


@login_required
@require_POST
def add_class(request: HttpRequest, project_id: int) -> HttpResponse:
    project = access_project_as_manager(request.user, project_id)
    form = LabelClassForm(request.POST)
    if form.is_valid():
        if LabelClass.objects.filter(project=project, name=form.cleaned_data["name"]).exists():
            messages.error(request, "A class with this name exists.")
        else:
            try:
                with transaction.atomic():
                    label_classes_reserve(project=project, adding=1)
                    form.instance.project = project
                    form.save()
            except LabelClassLimit as exc:
                messages.error(request, f"Class not added: {exc}.")
            else:
                messages.success(request, f"Class {form.instance.name} added.")
    else:
        messages.error(request, f"Class not added: {form.errors.as_text()}")
    return redirect("campaign-setup", project_id=project.pk)


@login_required
@require_POST
def invite(request: HttpRequest, project_id: int) -> HttpResponse:
    project = access_project_as_manager(request.user, project_id)
    form = InviteForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "Choose a CSV file.")
        return redirect("campaign-setup", project_id=project.pk)
    try:
        text = form.cleaned_data["file"].read(1024 * 1024 + 1).decode("utf-8-sig")
    except UnicodeDecodeError:
        messages.error(request, "The file must be UTF-8 text.")
        return redirect("campaign-setup", project_id=project.pk)
    report = member_services.members_invite_csv(project=project, text=text, request=request)
    if report.errors:
        messages.error(request, "Nothing was imported: " + "; ".join(report.errors))
    else:
        messages.success(
            request,
            f"{len(report.created)} invited (password e-mail sent), "
            f"{len(report.added)} existing users added.",
        )
    return redirect("campaign-setup", project_id=project.pk)


@login_required
@require_POST
def seed(request: HttpRequest, project_id: int) -> HttpResponse:
    project = access_project_as_manager(request.user, project_id)
    form = SeedForm(request.POST)
    if form.is_valid():
        regions = region_services.regions_seed(
            project=project,
            per_slide=form.cleaned_data["per_slide"],
            seed=form.cleaned_data["seed"],
            created_by=request.user,
        )
        messages.success(request, f"{len(regions)} regions placed on tissue.")
    return redirect("campaign-setup", project_id=project.pk)


@login_required
@require_POST
def exclude(request: HttpRequest, project_id: int, membership_id: int) -> HttpResponse:
    project = access_project_as_manager(request.user, project_id)
    membership = get_object_or_404(Membership, project=project, pk=membership_id)
    form = ExcludeForm(request.POST)
    if form.is_valid():
        changed = member_services.member_exclude(
            membership=membership, by=request.user, reason=form.cleaned_data["reason"]
        )
        messages.success(
            request, f"{membership.user} excluded; {changed} submissions no longer count."
        )
    else:
        messages.error(request, "Give a reason for the exclusion.")
    return redirect("campaign-setup", project_id=project.pk)


@login_required
@require_POST
def release(request: HttpRequest, project_id: int, assignment_id: int) -> HttpResponse:
    project = access_project_as_manager(request.user, project_id)
    assignment = get_object_or_404(Assignment, region__project=project, pk=assignment_id)
    assignment_services.assignment_release(assignment=assignment)
    messages.success(request, "Assignment released.")
    return redirect("campaign-setup", project_id=project.pk)


@login_required
@require_POST
def reassign(request: HttpRequest, project_id: int, assignment_id: int) -> HttpResponse:
    project = access_project_as_manager(request.user, project_id)
    assignment = get_object_or_404(Assignment, region__project=project, pk=assignment_id)
    form = ReassignForm(request.POST)
    user = get_user_model().objects.filter(username=request.POST.get("username", "")).first()
    if not form.is_valid() or user is None:
        messages.error(request, "No such user.")
        return redirect("campaign-setup", project_id=project.pk)
    try:
        assignment_services.assignment_reassign(assignment=assignment, to_user=user)
        messages.success(request, f"Assignment moved to {user.username}.")
    except assignment_services.AssignmentError as exc:
        messages.error(request, str(exc))
    return redirect("campaign-setup", project_id=project.pk)


@login_required
@require_POST
def add_guideline_image(request: HttpRequest, project_id: int) -> HttpResponse:
    project = access_project_as_manager(request.user, project_id)
    form = GuidelineImageForm(request.POST, request.FILES)
    if form.is_valid():
        GuidelineImage.objects.create(
            project=project,
            image=form.cleaned_data["image"],
            caption=form.cleaned_data["caption"],
            order=GuidelineImage.objects.filter(project=project).count(),
        )
        messages.success(request, "Example image added to the guidelines.")
    else:
        messages.error(request, f"Image not added: {form.errors.as_text()}")
    return redirect("campaign-setup", project_id=project.pk)


@login_required
def guideline_image(request: HttpRequest, project_id: int, image_id: int) -> HttpResponse:
    """A guideline example, to the project's members only (media is not served publicly)."""
    project = access_project(request.user, project_id)
    image = get_object_or_404(GuidelineImage, project=project, pk=image_id)
    response = FileResponse(image.image.open("rb"))
    response["Cache-Control"] = "private, max-age=3600"
    return response

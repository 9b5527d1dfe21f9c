"""What the live Entra read asks Graph for: each collection's first request, built by
msgraph-sdk's request builders (graph.py pages and retries them). Every request carries
``x-ms-throttle-priority: low`` and asks for the raw answer (NativeResponseHandler): pages are
parsed into Polars, never into SDK models."""

from __future__ import annotations

from typing import Any

from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.native_response_handler import NativeResponseHandler
from kiota_abstractions.request_information import RequestInformation
from kiota_http.middleware.options import ResponseHandlerOption
from msgraph.generated.directory.deleted_items.graph_user.graph_user_request_builder import (
    GraphUserRequestBuilder,
)
from msgraph.generated.groups.item.members.members_request_builder import MembersRequestBuilder
from msgraph.generated.role_management.directory.role_assignments.role_assignments_request_builder import (  # noqa: E501
    RoleAssignmentsRequestBuilder as Assigned,
)
from msgraph.generated.role_management.directory.role_eligibility_schedule_instances.role_eligibility_schedule_instances_request_builder import (  # noqa: E501
    RoleEligibilityScheduleInstancesRequestBuilder as Eligible,
)
from msgraph.generated.users.delta.delta_request_builder import DeltaRequestBuilder
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient

from audit.sources.entra import BOOL_PROPERTIES, TEXT_PROPERTIES, TIME_PROPERTIES

PAGE_SIZE = 999  # $top 1..999 for directory collections (https://learn.microsoft.com/graph/paging)
# Beta-only user properties: naming one in a v1.0 $select is a 400 (user resource, v1.0).
BETA_ONLY = frozenset({"onPremisesObjectIdentifier"})
USER_SELECT = (
    "id",
    *(
        name
        for name in (*TEXT_PROPERTIES, *BOOL_PROPERTIES, *TIME_PROPERTIES)
        if name not in BETA_ONLY
    ),
    "proxyAddresses",
    "onPremisesProvisioningErrors",
)


class GraphRequests:
    """The first request of each collection, for one GraphServiceClient."""

    def __init__(self, client: GraphServiceClient, adapter: GraphRequestAdapter, beta: str) -> None:
        self.client, self.adapter, self.beta = client, adapter, beta

    def config(self, query: Any = None) -> RequestConfiguration[Any]:
        config: RequestConfiguration[Any] = RequestConfiguration(query_parameters=query)
        # Background work goes first when Graph has to throttle (throttling.md, "Priority").
        config.headers.add("x-ms-throttle-priority", "low")
        config.options = [ResponseHandlerOption(NativeResponseHandler())]
        return config

    def users(self) -> RequestInformation:
        # user-list (https://learn.microsoft.com/graph/api/user-list?view=graph-rest-1.0):
        # $select and $top (1..999, https://learn.microsoft.com/graph/paging)
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            select=list(USER_SELECT), top=PAGE_SIZE
        )
        return self.client.users.to_get_request_information(self.config(query))

    def latest_delta(self) -> RequestInformation:
        # user-delta (https://learn.microsoft.com/graph/api/user-delta?view=graph-rest-1.0):
        # "$select" and a "$filter" by id are its only OData parameters; the deltaLink carries
        # the $select on, so changes come back with the same properties. $deltatoken=latest
        # (delta-query-overview: directory resources "support sync from now") is not in the
        # SDK's URL template, so it is added to the URL the template gives.
        query = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(select=list(USER_SELECT))
        info = self.client.users.delta.to_get_request_information(self.config(query))
        self.adapter.set_base_url_for_request_information(info)  # as the adapter does on send
        info.url = f"{info.url}&%24deltatoken=latest"
        return info

    def deleted(self) -> RequestInformation:
        query = GraphUserRequestBuilder.GraphUserRequestBuilderGetQueryParameters(
            select=[*USER_SELECT], top=PAGE_SIZE
        )
        builder = self.client.directory.deleted_items.graph_user
        return builder.to_get_request_information(self.config(query))

    def plain(self, name: str) -> RequestInformation:
        builder: Any = {
            "domains": self.client.domains,
            "organization": self.client.organization,
            "sync": self.client.directory.on_premises_synchronization,
            "role-definitions": self.client.role_management.directory.role_definitions.with_url(
                f"{self.beta}/roleManagement/directory/roleDefinitions"
            ),
        }[name]
        return builder.to_get_request_information(self.config())  # type: ignore[no-any-return]

    def roles(self, eligible: bool) -> RequestInformation:
        directory = self.client.role_management.directory
        # $expand=principal says which principals are groups (rbacapplication-list-
        # roleassignments, example "$expand=principal")
        if eligible:
            query: Any = Eligible.RoleEligibilityScheduleInstancesRequestBuilderGetQueryParameters(
                expand=["principal"]
            )
            return directory.role_eligibility_schedule_instances.to_get_request_information(
                self.config(query)
            )
        query = Assigned.RoleAssignmentsRequestBuilderGetQueryParameters(expand=["principal"])
        return directory.role_assignments.to_get_request_information(self.config(query))

    def members(self, group_id: str) -> RequestInformation:
        query = MembersRequestBuilder.MembersRequestBuilderGetQueryParameters(
            select=["id"], top=PAGE_SIZE
        )
        builder = self.client.groups.by_group_id(group_id).members
        return builder.to_get_request_information(self.config(query))

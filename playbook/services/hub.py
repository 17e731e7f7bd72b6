"""The composition root of a run: every outside client a session needs, built once from Settings.

`Services` is made in one place (core.Session.services, or a test) with everything a client
depends on given to its constructor: the settings, the transport policy, the durable cache, the
clock the governors pace on and, on a terminal, the one-time-password prompt. Each client has one
typed method here that builds it on first use and returns the same object after; the service
modules keep their `github_api(services)`-style accessors, which only delegate to these.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import httpx

from playbook.clock import SYSTEM_CLOCK, Clock
from playbook.config.settings import Settings
from playbook.net.cache import Cache, MemoryCache
from playbook.net.governor import Governor, GovernorConfig, Pace
from playbook.net.http import ClientOptions, build_client

# Each client module is imported where its client is first built: a command that never talks
# to npm or GitHub (status, list, report) does not pay for loading them.
if TYPE_CHECKING:
    from playbook.services.archive import SoftwareHeritage
    from playbook.services.cdn import HttpCdn, JsDelivrPurge
    from playbook.services.forge import Forgejo, GitLab
    from playbook.services.github import RestGitHub
    from playbook.services.github_graphql import GraphQLGitHub
    from playbook.services.npm import AskOtp, HttpNpmRegistry

__all__ = ["Cache", "MemoryCache", "Services"]

GITHUB_HEADERS = {"accept": "application/vnd.github+json", "x-github-api-version": "2022-11-28"}
FORGE_LIMITS = GovernorConfig(budget=1000, paces={})


class Services:
    """Builds each client once per run with the house policy (see playbook.net.http)."""

    def __init__(
        self,
        settings: Settings,
        options: ClientOptions,
        cache: Cache | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        otp_prompt: AskOtp | None = None,
    ) -> None:
        self.settings = settings
        self.options = options
        self.cache: Cache = cache or MemoryCache()
        self.clock = clock
        self.otp_prompt = otp_prompt
        self._clients: list[httpx.AsyncClient] = []
        self._governors: dict[str, Governor] = {}
        self._registries: dict[str, HttpNpmRegistry] = {}
        self._github: RestGitHub | None = None
        self._graphql: GraphQLGitHub | None = None
        self._gitlab: GitLab | None = None
        self._codeberg: Forgejo | None = None
        self._swh: SoftwareHeritage | None = None
        self._cdns: tuple[HttpCdn, HttpCdn] | None = None
        self._purge: JsDelivrPurge | None = None

    def client(
        self,
        base_url: str = "",
        headers: dict[str, str] | None = None,
        *,
        timeout: float | None = None,
    ) -> httpx.AsyncClient:
        """A client with the house policy; `timeout` overrides the run's (a hunt service's)."""
        options = self.options if timeout is None else replace(self.options, timeout=timeout)
        client = build_client(options, base_url=base_url, headers=headers)
        self._clients.append(client)
        return client

    # -- governed APIs --------------------------------------------------------------------

    def _governor(
        self, name: str, base_url: str, config: GovernorConfig, headers: dict[str, str] | None
    ) -> Governor:
        """The one governor for host `name` in this run, on the run's clock."""
        if name not in self._governors:
            gov = Governor(
                self.client(base_url, headers, timeout=self.settings.service_timeout),
                name,
                self.cache,
                config,
                clock=self.clock.time,
                sleep=self.clock.sleep,
            )
            hook = self.options.on_wait
            if hook is not None:
                gov._listeners.append(
                    lambda s: hook(s.describe(), s.waiting) if s.waiting else None
                )
            self._governors[name] = gov
        return self._governors[name]

    def github(self) -> RestGitHub:
        """GitHub's REST API: base URL from settings, token as Bearer, paced by the limits."""
        if self._github is None:
            from playbook.services.github import RestGitHub

            base = self.settings.endpoint("github")
            headers = dict(GITHUB_HEADERS)
            if self.settings.github_token:
                headers["authorization"] = f"Bearer {self.settings.github_token.reveal()}"
            limits = self.settings.limits
            config = GovernorConfig(
                budget=limits.github_budget,
                paces={
                    "code_search": Pace(limits.github_code_search_per_minute),
                    "search": Pace(limits.github_search_per_minute),
                },
            )
            self._github = RestGitHub(self._governor("github", base, config, headers), base)
        return self._github

    def github_graphql(self) -> GraphQLGitHub:
        """GitHub's GraphQL API, on the REST client's governor: one pace and budget per host."""
        if self._graphql is None:
            from playbook.services.github_graphql import GraphQLGitHub, graphql_url

            rest = self.github()
            self._graphql = GraphQLGitHub(rest.governor, graphql_url(rest.base_url))
        return self._graphql

    def gitlab(self) -> GitLab:
        if self._gitlab is None:
            from playbook.services.forge import GitLab

            base = self.settings.endpoint("gitlab")
            self._gitlab = GitLab(self._governor("gitlab", base, FORGE_LIMITS, None), base)
        return self._gitlab

    def codeberg(self) -> Forgejo:
        if self._codeberg is None:
            from playbook.services.forge import Forgejo

            base = self.settings.endpoint("codeberg")
            self._codeberg = Forgejo(self._governor("codeberg", base, FORGE_LIMITS, None), base)
        return self._codeberg

    def software_heritage(self) -> SoftwareHeritage:
        if self._swh is None:
            from playbook.services.archive import SoftwareHeritage

            base = self.settings.endpoint("swh")
            pace = Pace(self.settings.limits.swh_search_per_minute)
            config = GovernorConfig(budget=200, paces={"search": pace})
            self._swh = SoftwareHeritage(self._governor("swh", base, config, None), base)
        return self._swh

    # -- plain clients --------------------------------------------------------------------

    def cdns(self) -> tuple[HttpCdn, HttpCdn]:
        """jsDelivr and unpkg, probed in that order."""
        if self._cdns is None:
            from playbook.services.cdn import HttpCdn

            js, un = self.settings.endpoint("jsdelivr"), self.settings.endpoint("unpkg")
            hunt = self.settings.service_timeout
            self._cdns = (
                HttpCdn("jsdelivr", self.client(timeout=hunt), js, "/npm/"),
                HttpCdn("unpkg", self.client(timeout=hunt), un, "/"),
            )
        return self._cdns

    def jsdelivr_purge(self) -> JsDelivrPurge:
        if self._purge is None:
            from playbook.services.cdn import JsDelivrPurge

            base = self.settings.endpoint("jsdelivr_purge")
            self._purge = JsDelivrPurge(self.client(timeout=self.settings.service_timeout), base)
        return self._purge

    def npm_registry(self, package: str) -> HttpNpmRegistry:
        """The client for `package`'s registry as npm resolves it (a scope may use its own)."""
        scope = package.split("/", 1)[0] if package.startswith("@") else ""
        if scope not in self._registries:
            self._registries[scope] = self._build_registry(package)
        return self._registries[scope]

    def _build_registry(self, package: str) -> HttpNpmRegistry:
        from playbook.config import npmrc
        from playbook.services.npm import HttpNpmRegistry, OtpSource

        settings = self.settings
        config = npmrc.resolve(settings, package)
        ask = self.otp_prompt if settings.interactive else None
        return HttpNpmRegistry(
            self.client(config.url),
            url=config.url,
            source=config.source,
            otp=OtpSource(given=settings.otp, ask=ask),
            token_source=config.token_source,
            credentials=config.credential_for,
            search_timeout=settings.service_timeout,
        )

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
        self._clients.clear()
        self._governors.clear()
        self._registries.clear()
        self._github = self._graphql = None
        self._gitlab = self._codeberg = self._swh = None
        self._cdns = self._purge = None

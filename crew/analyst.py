"""The analyst crew in crewAI's conventions: researcher → analyst → writer, sequential, prose in prompts/*.yaml.

Imports crewAI (~4 s): only ``crew.crewbrief`` imports this module, and only when a crew run starts.
Models, tools, guardrails and limits are handed in; this class only wires them to the YAML.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from importlib.resources import files
from typing import Any

from crewai import Agent, Crew, Process, Task
from crewai.project import CrewBase, agent, crew, task
from crewai.tools import BaseTool

from crew.crewbrief import Limits

PROMPTS = files("prompts")

Guardrail = Callable[[Any], tuple[bool, Any]]


@CrewBase
class AnalystCrew:
    """Three agents, three tasks, one sequential crew."""

    # Paths here; crewAI replaces them with the parsed YAML when an instance is made.
    agents_config: Any = str(PROMPTS / "agents.yaml")
    tasks_config: Any = str(PROMPTS / "tasks.yaml")
    agents: list[Any]
    tasks: list[Any]

    def __init__(self, llms: Mapping[str, Any], tools: Sequence[BaseTool], guardrails: Mapping[str, Guardrail],
                 limits: Limits) -> None:
        self.llms = llms
        self.research_tools = list(tools)
        self.guardrails = guardrails
        self.limits = limits

    def _agent(self, name: str, tools: Sequence[BaseTool] = ()) -> Agent:
        return Agent(
            config=self.agents_config[name],
            llm=self.llms[name],
            tools=list(tools),
            max_iter=self.limits.max_iter,
            max_execution_time=self.limits.max_execution_time_s,
            # A failed LLM call is not re-run as a whole task: request retries are the HTTP client's, bounded
            # by llm.max_retries, and a failed guardrail retries with feedback below.
            max_retry_limit=0,
            allow_delegation=False,
            # Never summarise or trim on its own: that would be hidden, unbudgeted LLM calls.
            respect_context_window=False,
            cache=False,
            verbose=False,
        )

    @agent
    def researcher(self) -> Agent:
        """Reads signals and stored items, may look up more (read-only tools), returns cited facts."""
        return self._agent("researcher", self.research_tools)

    @agent
    def analyst(self) -> Agent:
        """Turns facts into why it matters, catalysts, risks and the contrarian view."""
        return self._agent("analyst")

    @agent
    def writer(self) -> Agent:
        """Writes the brief's sections of cited claims."""
        return self._agent("writer")

    def _task(self, name: str, guardrail: str, retries: int) -> Task:
        # description and expected_output come from the YAML config, which mypy cannot see.
        return Task(config=self.tasks_config[name],  # type: ignore[call-arg]
                    guardrail=self.guardrails[guardrail], guardrail_max_retries=retries)

    @task
    def research_task(self) -> Task:
        """Facts from the window's signals and items."""
        return self._task("research_task", "researcher", self.limits.helper_retries)

    @task
    def analysis_task(self) -> Task:
        """Analysis of the facts."""
        return self._task("analysis_task", "analyst", self.limits.helper_retries)

    @task
    def writing_task(self) -> Task:
        """The brief, checked by the grounding guardrail."""
        return self._task("writing_task", "writer", self.limits.writer_retries)

    @crew
    def crew(self) -> Crew:
        """The sequential crew, with tracing, memory, planning and sharing off."""
        return Crew(agents=self.agents, tasks=self.tasks, process=Process.sequential, verbose=False, tracing=False,
                    memory=False, cache=False, planning=False, share_crew=False)

"""One execution of a claimed task, in layers.

:mod:`~claudomator.execution.attempt` orchestrates; :mod:`~claudomator.execution.plan` decides
fresh or resumed, :mod:`~claudomator.execution.price` prices an outcome,
:mod:`~claudomator.execution.delivery` hands the work over, :mod:`~claudomator.execution.finish`
decides (purely) where the task goes and what is recorded, and
:mod:`~claudomator.execution.health` records what the outcome says about the agent.
"""

"""CLI for desk accounts: ``tapewatch users add|list|disable|enable|passwd``."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from tapewatch.cli.root import _ago, app, out, settings

users_app = typer.Typer(help="Web desk accounts (viewer, reviewer, admin).", no_args_is_help=True)
app.add_typer(users_app, name="users")

PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input.")]


def _accounts():  # type: ignore[no-untyped-def]
    from memory.accounts import Accounts
    from tapewatch.clients import open_state

    return Accounts(open_state(settings()))


def _password(from_stdin: bool) -> str:
    if not from_stdin:
        raise typer.BadParameter("pass the password on standard input with --password-stdin (never as an argument)",
                                 param_hint="--password-stdin")
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise typer.BadParameter("standard input held no password", param_hint="--password-stdin")
    return password


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Sign-in name.")],
    role: Annotated[str, typer.Option(help="viewer, reviewer or admin.")] = "viewer",
    password_stdin: PasswordStdin = False,
) -> None:
    """Create an account; the password is stored as an argon2id hash."""
    user = _accounts().add(name, role, _password(password_stdin))
    out.print(f"Added {user.name} ({user.role}).", highlight=False)


@users_app.command("list")
def users_list() -> None:
    """Every account, its role and whether it is disabled."""
    users = _accounts().list()
    if not users:
        out.print("No accounts yet: tapewatch users add NAME --role admin --password-stdin", highlight=False)
        return
    table = Table(header_style="bold")
    for col in ("name", "role", "state", "created", "changed"):
        table.add_column(col)
    for u in users:
        table.add_row(u.name, u.role, "disabled" if u.disabled else "active", _ago(u.created_at), _ago(u.changed_at))
    out.print(table)


@users_app.command("disable")
def users_disable(name: Annotated[str, typer.Argument(help="Sign-in name.")]) -> None:
    """Disable an account; its sessions end at once."""
    _accounts().set_disabled(name, True)
    out.print(f"Disabled {name}; its sessions are ended.", highlight=False)


@users_app.command("enable")
def users_enable(name: Annotated[str, typer.Argument(help="Sign-in name.")]) -> None:
    """Enable a disabled account again (it signs in anew)."""
    _accounts().set_disabled(name, False)
    out.print(f"Enabled {name}.", highlight=False)


@users_app.command("passwd")
def users_passwd(name: Annotated[str, typer.Argument(help="Sign-in name.")],
                 password_stdin: PasswordStdin = False) -> None:
    """Set a new password (from standard input); the account's sessions end."""
    _accounts().set_password(name, _password(password_stdin))
    out.print(f"New password set for {name}; its sessions are ended.", highlight=False)

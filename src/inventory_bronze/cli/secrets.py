"""`inventory-bronze secrets providers | check`: which providers the secrets chain uses here, and whether
each needed secret is found (and by which provider). Values are never printed."""

from __future__ import annotations

import argparse
import sys

_EPILOG = (
    "Chain: Databricks secret scope (when DATABRICKS_RUNTIME_VERSION is set; scope from "
    "INVENTORY_BRONZE_SECRET_SCOPE) -> Azure Key Vault (when INVENTORY_BRONZE_KEYVAULT_URL is set; "
    "DefaultAzureCredential) -> INVENTORY_BRONZE_SECRET_<NAME> -> the local file "
    "INVENTORY_BRONZE_SECRETS_FILE (default var/secrets/local.json, written by `inventory-bronze db start`)."
)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "secrets",
        help="show the secrets chain and check that the needed secrets are found (never their values)",
        description="The one secrets chain every job uses.",
        epilog=_EPILOG,
    )
    sec_sub = parser.add_subparsers(dest="secrets_command", metavar="SUBCOMMAND")
    providers = sec_sub.add_parser(
        "providers",
        help="list the providers of the chain, in order",
        description="List the chain's providers.",
        epilog=_EPILOG,
    )
    check = sec_sub.add_parser(
        "check",
        help="check that each secret is found, and by which provider",
        description="Look each secret up through the chain and print the provider that holds it (never the "
        "value). Exit status 1 when one is missing or a provider fails.",
        epilog=_EPILOG,
    )
    check.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="secret names (default: the source connection's, KConnectionString KUser KPassword)",
    )
    providers.set_defaults(handler=_providers)
    check.set_defaults(handler=_check)
    parser.set_defaults(handler=lambda args: (parser.print_help(), 2)[1])


def _providers(args: argparse.Namespace) -> int:
    from inventory_bronze.secrets import default_chain

    for index, label in enumerate(default_chain().describe(), 1):
        print(f"{index}. {label}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from inventory_bronze.secrets import SecretError, SecretNames, default_chain

    defaults = SecretNames.from_env()
    names = args.names or [defaults.url, defaults.user, defaults.password]
    chain = default_chain()
    failed = 0
    for name in names:
        try:
            secret = chain.get(name)
            print(f"{name}: found in {secret.provider}")
        except SecretError as err:
            print(f"{name}: {err}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0

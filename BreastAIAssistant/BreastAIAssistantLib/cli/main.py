"""``breast-ai``: breast DCE-MRI maps and AI analysis from the command line (research use only).

User errors (bad files, bad arguments) print one line on stderr and exit with status 2; a
traceback means a bug.
"""

from __future__ import annotations

import sys

import click

from BreastAIAssistantLib import __version__
from BreastAIAssistantLib.cli import classify as classify_command
from BreastAIAssistantLib.cli import demo as demo_command
from BreastAIAssistantLib.cli import measure as measure_command
from BreastAIAssistantLib.cli import phantom as phantom_command
from BreastAIAssistantLib.cli import radiomics_features, radiomics_model, study_commands
from BreastAIAssistantLib.cli import run as run_command
from BreastAIAssistantLib.cli import train as train_commands
from BreastAIAssistantLib.cli.common import configure_logging
from BreastAIAssistantLib.errors import BreastAIError

EXIT_USER_ERROR = 2

DISCLAIMER = "Research use only: not validated for clinical decisions."


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=DISCLAIMER,
)
@click.version_option(__version__, prog_name="breast-ai")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """Breast DCE-MRI assistant: read a multi-phase study, compute subtraction and kinetic maps.

    STUDY can be a folder of per-phase volumes (NIfTI/NRRD/MHA, optional study.json), a
    MAMA-MIA case (<ID>_0000.nii.gz ...), a 4-D NIfTI file (time last), a DICOM folder (one
    series per phase or one multi-temporal series) or a BreastDM case (VIBRANT, VIBRANT+C1 ...).
    """
    configure_logging(verbose)


#: Every sub-command, registered explicitly (no package scanning).
COMMANDS: tuple[click.Command, ...] = (
    study_commands.info,
    run_command.run,
    study_commands.maps,
    demo_command.demo,
    measure_command.measure,
    phantom_command.phantom,
    train_commands.train,
    train_commands.evaluate_command,
    classify_command.classify,
    radiomics_features.features,
    radiomics_model.radiomics_model,
)
for _command in COMMANDS:
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning user errors into one line and exit status 2."""
    try:
        result = cli.main(args=argv, prog_name="breast-ai", standalone_mode=False)
    except BreastAIError as exc:
        click.echo(f"breast-ai: error: {exc}", err=True)
        return EXIT_USER_ERROR
    except click.exceptions.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("breast-ai: aborted", err=True)
        return 130
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())

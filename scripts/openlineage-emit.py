"""Emits a small pipeline's OpenLineage events with the real `openlineage-python` client, the
way a pipeline would: configured only by OPENLINEAGE_URL and OPENLINEAGE_API_KEY (and
OPENLINEAGE_ENDPOINT when set). Used by custody-server's lineage API test.

    raw.transactions (version 2024-05) --clean--> curated.transactions --train--> model fraud v3

Run ids come from argv so the test can query by them: `openlineage-emit.py CLEAN_RUN TRAIN_RUN`.
"""

import sys
from datetime import datetime, timezone

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    dataset_version_dataset,
    datasource_dataset,
    schema_dataset,
)

PRODUCER = "https://github.com/custody-dev/custody/scripts/openlineage-emit.py"


def at(hour):
    return datetime(2024, 5, 1, hour, 0, tzinfo=timezone.utc).isoformat()


def main():
    clean_run, train_run = sys.argv[1], sys.argv[2]
    client = OpenLineageClient()
    raw = InputDataset(
        namespace="s3://raw",
        name="transactions",
        facets={
            "version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion="2024-05"),
            "dataSource": datasource_dataset.DatasourceDatasetFacet(name="raw", uri="s3://raw"),
            "schema": schema_dataset.SchemaDatasetFacet(
                fields=[
                    schema_dataset.SchemaDatasetFacetFields(name="card_number", type="string"),
                    schema_dataset.SchemaDatasetFacetFields(name="amount", type="decimal"),
                ]
            ),
        },
    )
    curated = OutputDataset(
        namespace="s3://curated",
        name="transactions",
        facets={
            "columnLineage": column_lineage_dataset.ColumnLineageDatasetFacet(
                fields={
                    "card_hash": column_lineage_dataset.Fields(
                        inputFields=[
                            column_lineage_dataset.InputField(
                                namespace="s3://raw",
                                name="transactions",
                                field="card_number",
                                transformations=[
                                    column_lineage_dataset.Transformation(
                                        type="DIRECT", subtype="TRANSFORMATION", masking=True
                                    )
                                ],
                            )
                        ]
                    )
                }
            )
        },
    )
    clean = Job(namespace="etl", name="clean-transactions")
    client.emit(RunEvent(eventType=RunState.START, eventTime=at(10), run=Run(runId=clean_run), job=clean,
                         producer=PRODUCER, inputs=[raw]))
    client.emit(RunEvent(eventType=RunState.COMPLETE, eventTime=at(11), run=Run(runId=clean_run), job=clean,
                         producer=PRODUCER, inputs=[raw], outputs=[curated]))
    train = Job(namespace="ml", name="train-fraud")
    model = OutputDataset(namespace="custody://payments", name="models/fraud")
    curated_in = InputDataset(namespace="s3://curated", name="transactions")
    client.emit(RunEvent(eventType=RunState.START, eventTime=at(12), run=Run(runId=train_run), job=train,
                         producer=PRODUCER, inputs=[curated_in]))
    client.emit(RunEvent(eventType=RunState.COMPLETE, eventTime=at(13), run=Run(runId=train_run), job=train,
                         producer=PRODUCER, inputs=[curated_in], outputs=[model]))


if __name__ == "__main__":
    main()

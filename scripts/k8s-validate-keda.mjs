// Validates the KEDA objects of the given manifests against the schemas generated from KEDA's own API types
// (npm @kubernetes-models/keda): ScaledObject, ScaledJob, TriggerAuthentication, ClusterTriggerAuthentication.
// Other kinds are left to kubernetes-validate (scripts/k8s-check.sh). Exits 1 on the first invalid object.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import * as keda from "@kubernetes-models/keda/keda.sh/v1alpha1";

let checked = 0;
for (const file of process.argv.slice(2)) {
  for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
    const obj = doc.toJS();
    if (!obj || obj.apiVersion !== "keda.sh/v1alpha1") continue;
    const Model = keda[obj.kind];
    if (!Model) {
      console.error(`FAIL ${file}: no KEDA schema for kind ${obj.kind}`);
      process.exit(1);
    }
    try {
      new Model(obj).validate();
    } catch (e) {
      console.error(`FAIL ${file}: ${obj.kind}/${obj.metadata?.name}: ${e.message}`);
      process.exit(1);
    }
    console.log(`INFO ${file} passed for resource ${obj.kind.toLowerCase()}/${obj.metadata?.name} against KEDA's schema`);
    checked++;
  }
}
if (checked === 0) {
  console.error("FAIL no KEDA object found");
  process.exit(1);
}

/**
 * The ids of nbtrack's commands. Widgets that trigger commands import them from
 * here, so no widget module imports commands.ts (which imports the widgets).
 */
export namespace CommandIDs {
  export const openPanel = 'nbtrack:open-panel';
  export const refresh = 'nbtrack:refresh';
  export const compareSelected = 'nbtrack:compare-selected';
  export const showDetails = 'nbtrack:show-details';
  export const openCell = 'nbtrack:open-cell';
  export const rerun = 'nbtrack:rerun';
  export const rerunSelected = 'nbtrack:rerun-selected';
  export const chooseColumns = 'nbtrack:choose-columns';
  export const openRun = 'nbtrack:open-run';
  export const openLineage = 'nbtrack:open-lineage';
  export const openModels = 'nbtrack:open-models';
  export const openDrift = 'nbtrack:open-drift';
}

/**
 * The type every dashboard in dashboards/ is checked against (check.mjs, tsc --strict).
 *
 * `DashboardJson` is @grafana/schema's `Dashboard` as it is written in JSON, with each panel's
 * `options` and `fieldConfig.defaults.custom` typed by the panel plugin's own types from
 * @grafana/schema (timeseries, stat, table, bargauge, state-timeline), and targets typed as
 * Prometheus queries. check.mjs assigns each dashboard file as an object literal, so unknown keys
 * are errors (excess-property checks), not just wrong types.
 */
import type {
  DataQuery,
  DataSourceRef,
  Dashboard,
  FieldConfig,
  FieldConfigSource,
  Panel,
  RowPanel,
} from '@grafana/schema';
import type * as BarGauge from '@grafana/schema/dist/esm/raw/composable/bargauge/panelcfg/x/BarGaugePanelCfg_types.gen';
import type * as Stat from '@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen';
import type * as StateTimeline from '@grafana/schema/dist/esm/raw/composable/statetimeline/panelcfg/x/StateTimelinePanelCfg_types.gen';
import type * as Table from '@grafana/schema/dist/esm/raw/composable/table/panelcfg/x/TablePanelCfg_types.gen';
import type * as TimeSeries from '@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';

type IsAny<T> = 0 extends 1 & T ? true : false;

/**
 * `T` as JSON spells it: a string enum becomes the union of its values (`ThresholdsMode` ->
 * `"absolute" | "percentage"`), which is what Grafana stores; everything else keeps its shape.
 */
export type Json<T> =
  IsAny<T> extends true
    ? T
    : T extends string
      ? `${T}`
      : T extends number | boolean | null | undefined
        ? T
        : T extends ReadonlyArray<infer U>
          ? Array<Json<U>>
          : T extends object
            ? { [K in keyof T]: Json<T[K]> }
            : T;

/**
 * A Prometheus target. @grafana/schema does not ship the Prometheus data query any more; these are
 * the fields of Grafana's PrometheusDataQuery kind (grafana/cog schemas/composable/prometheus).
 */
export interface PrometheusQuery extends Omit<Json<DataQuery>, 'datasource'> {
  datasource: Json<DataSourceRef>;
  expr: string;
  instant?: boolean;
  range?: boolean;
  exemplar?: boolean;
  editorMode?: 'code' | 'builder';
  format?: 'time_series' | 'table' | 'heatmap';
  legendFormat?: string;
  interval?: string;
  intervalFactor?: number;
}

type FieldConfigSourceOf<Custom> = Omit<Json<FieldConfigSource>, 'defaults'> & {
  defaults: Omit<Json<FieldConfig>, 'custom'> & { custom?: Partial<Json<Custom>> };
};

/** A panel of plugin `Type`: every panel reads Prometheus through the dashboard's data source. */
type PanelOf<Type extends string, Options, Custom> = Omit<
  Json<Panel>,
  'type' | 'options' | 'fieldConfig' | 'targets' | 'datasource'
> & {
  type: Type;
  datasource: Json<DataSourceRef>;
  targets: PrometheusQuery[];
  options?: Partial<Json<Options>>;
  fieldConfig?: FieldConfigSourceOf<Custom>;
};

export type SloguardPanel =
  | PanelOf<'timeseries', TimeSeries.Options, TimeSeries.FieldConfig>
  | PanelOf<'stat', Stat.Options, Record<string, never>>
  | PanelOf<'bargauge', BarGauge.Options, Record<string, never>>
  | PanelOf<'table', Table.Options, Table.FieldConfig>
  | PanelOf<'state-timeline', StateTimeline.Options, StateTimeline.FieldConfig>;

export type DashboardJson = Omit<Json<Dashboard>, 'panels'> & {
  panels: Array<SloguardPanel | Json<RowPanel>>;
};
